import { accessLog } from './dist/src/cli/gateway.js';
process.on('SIGINT', () => process.exit(0));
const access = accessLog('/dev/full');
const failed = new Promise((resolve) => access.onWriteError(resolve));
for (let i = 0; i < 200; i++) access.log.info({ id: `line ${i}`, padding: 'x'.repeat(100) });
await failed;
access.close(); console.log('closed');
