// Runs inside a group's network namespace: accepts connections on a Unix socket (the file system is
// shared with the host) and carries each to the leader's port on the namespace's loopback.
//   node relay-main.js SOCKET HOST PORT
import { connect, createServer } from 'node:net';
import { rmSync } from 'node:fs';
import { splice } from '../../util/net.js';

const [socket, host, port] = process.argv.slice(2) as [string, string, string];
rmSync(socket, { force: true });
createServer((client) => {
  splice(client, connect(Number(port), host));
}).listen(socket, () => process.stdout.write('listening\n'));
