/**
 * STYLE.md 8 and "What not to do": an error may be swallowed only with a stated reason. ESLint's no-empty and
 * no-empty-function see `catch {}` and `() => {}`, but not this code's idiom `() => undefined`; this rule sees
 * a do-nothing handler given to `.catch(h)`, `.then(ok, h)` or `.on('error', h)` / `.once('error', h)`, and
 * wants a comment inside it, on the statement's lines, or on the line above.
 */

/** `() => {}`, `() => undefined`, `() => null`, `() => void 0`, with or without a parameter. */
function doesNothing(fn) {
  if (fn === undefined || (fn.type !== 'ArrowFunctionExpression' && fn.type !== 'FunctionExpression')) return false;
  const b = fn.body;
  if (b.type === 'BlockStatement') return b.body.length === 0;
  if (b.type === 'Identifier') return b.name === 'undefined';
  if (b.type === 'Literal') return b.value === null;
  return b.type === 'UnaryExpression' && b.operator === 'void' && b.argument.type === 'Literal';
}

/** The handler argument a call swallows errors with, if it is one of the watched shapes. */
function swallowingHandler(call) {
  const callee = call.callee;
  if (callee.type !== 'MemberExpression' || callee.computed || callee.property.type !== 'Identifier') return undefined;
  const [first, second] = call.arguments;
  switch (callee.property.name) {
    case 'catch':
      return doesNothing(first) ? first : undefined;
    case 'then':
      return doesNothing(second) ? second : undefined;
    case 'on':
    case 'once':
      return first?.type === 'Literal' && first.value === 'error' && doesNothing(second) ? second : undefined;
    default:
      return undefined;
  }
}

/** @type {import('eslint').Rule.RuleModule} */
export const swallowedErrors = {
  meta: {
    type: 'problem',
    docs: { description: 'An error handler that does nothing must say why in a comment' },
    messages: { noReason: 'This handler swallows the error: say why in a comment (STYLE.md 8).' },
    schema: [],
  },
  create(context) {
    const source = context.sourceCode;
    return {
      CallExpression(call) {
        const handler = swallowingHandler(call);
        if (handler === undefined) return;
        let statement = call;
        while (statement.parent !== null && !statement.parent.type.endsWith('Statement') && statement.parent.type !== 'Program') {
          statement = statement.parent;
        }
        if (statement.parent !== null && statement.parent.type.endsWith('Statement')) statement = statement.parent;
        const from = statement.loc.start.line - 1;
        const to = statement.loc.end.line;
        const explained = source.getAllComments().some((c) => c.loc.end.line >= from && c.loc.start.line <= to);
        if (!explained) context.report({ node: handler, messageId: 'noReason' });
      },
    };
  },
};
