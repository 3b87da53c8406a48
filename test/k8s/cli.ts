// `npm run k8s:up` / `npm run k8s:down`: the test control plane by hand. `up` prints
// KUBECONFIG=<path> as its last line (reusing a running one); `down` stops it.
import { stderrProgress } from '../../src/util/progress.js';
import { startCluster, stopCluster } from './cluster.js';

const command = process.argv[2];
if (command === 'up') {
  const { kubeconfig, started } = await startCluster(stderrProgress);
  if (!started) stderrProgress('reusing the control plane already running');
  process.stdout.write(`KUBECONFIG=${kubeconfig}\n`);
} else if (command === 'down') {
  process.stdout.write(
    (await stopCluster()) ? 'stopped the test control plane\n' : 'no test control plane was running\n',
  );
} else {
  process.stderr.write('usage: node dist/test/k8s/cli.js up|down\n');
  process.exitCode = 2;
}
