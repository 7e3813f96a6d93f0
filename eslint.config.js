// Lint: ESLint's and typescript-eslint's recommended rules with type information, plus what STYLE.md asks
// (no unused code, no floating promises, no silent catch, `import type` for types). Formatting is Prettier's
// (.prettierrc.json); nothing here has an opinion on layout.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';
import { swallowedErrors } from './lint/swallowed-errors.js';

export default defineConfig(
  { ignores: ['dist/', 'node_modules/'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    plugins: { phpgate: { rules: { 'swallowed-errors': swallowedErrors } } },
    rules: {
      // node:test's test()/describe() return promises that the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }] },
      ],
      // `typeof import('ioredis')` stays allowed: the lazily loaded modules' types are named where they are loaded.
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
      '@typescript-eslint/no-import-type-side-effects': 'error',
      // An empty block or function (`catch {}`, `.catch(() => {})`, `on('error', () => {})`) must say why in a comment.
      'no-empty': 'error',
      '@typescript-eslint/no-empty-function': 'error',
      'phpgate/swallowed-errors': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' }],
    },
  },
  { files: ['**/*.js'], extends: [tseslint.configs.disableTypeChecked] },
);
