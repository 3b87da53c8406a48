// A yardstick, not a product path: the least a Node gateway can do (node:http in, undici out,
// round robin, the body piped through untouched), for bench:peers to set Tandem's CPU per request
// beside. Run as its own process: node node-floor.js PORT UPSTREAM…; prints "listening" once it is.
import { createServer } from 'node:http';
import { Pool } from 'undici';

const [port, ...upstreams] = process.argv.slice(2);
const pools = upstreams.map((u) => new Pool(u, { connections: 64, pipelining: 1 }));
let next = 0;

const server = createServer((req, res) => {
  const pool = pools[next++ % pools.length]!;
  pool
    .request({
      method: req.method as 'POST',
      path: req.url ?? '/',
      headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
      body: req,
    })
    .then(
      ({ statusCode, headers, body }) => {
        res.writeHead(statusCode, { 'content-type': String(headers['content-type'] ?? 'application/json') });
        body.pipe(res);
      },
      () => {
        res.writeHead(502);
        res.end();
      },
    );
});
server.keepAliveTimeout = 60_000;
server.listen(Number(port), '127.0.0.1', () => process.stdout.write('listening\n'));
