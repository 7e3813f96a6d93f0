/**
 * The public face of nginx-compat/: read an nginx site configuration, write gateway.yaml and a report.
 * It imports config/ only, and produces nothing but configuration (STYLE.md point 4).
 */
export { importNginx, translateNginx, NGINX_PREFIX, type ImportOptions, type ImportResult } from './translate.js';
export { parseNginx, parseNginxFile, NGINX_CONF_DIR, STOCK_INCLUDES, type Directive } from './parse.js';
export { tokenize, TokenKind, type Token } from './tokenize.js';
export { NginxSyntaxError, NginxImportError } from './errors.js';
export { formatWarning, WarningKind, type Warning } from './report.js';
