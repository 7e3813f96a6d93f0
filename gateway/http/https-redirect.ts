/** Listening, and the plain-HTTP listener that sends every client to HTTPS (server.redirect_http_port). */
import type http from 'node:http';

/** Listens on `port` and `host`; rejects with the listen error (EADDRINUSE…). */
export function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
}

/**
 * server.redirect_http_port: every plain-HTTP request gets a 301 to the same path and query over HTTPS, except
 * ACME http-01 challenges (/.well-known/acme-challenge/), which certificate renewal needs over plain HTTP: those
 * are served from the docroot as on the main port.
 */
export function redirectToHttps(httpsPort: number, serve: http.RequestListener): http.RequestListener {
  return (req, res) => {
    const url = req.url ?? '/';
    if (url.startsWith('/.well-known/acme-challenge/')) {
      serve(req, res);
      return;
    }
    const host = (req.headers.host ?? 'localhost').replace(/:\d+$/, '');
    const port = httpsPort === 443 ? '' : `:${httpsPort}`;
    res.writeHead(301, { Location: `https://${host}${port}${url.startsWith('/') ? url : '/'}`, 'Content-Length': 0 });
    res.end();
  };
}
