// `npm run k8s:up` / `npm run k8s:down`: the test control plane by hand. `up` prints
// KUBECONFIG=<path> as its last line (reusing a running one); `down` stops it (and undoes what its
// real node changed on the host). `npm run image`: Tandem's image from this checkout, loaded into
// the running cluster's real node when there is one.
import { stderrProgress } from '../../src/util/progress.js';
import { loadImage, runningCluster, startCluster, stopCluster } from './cluster.js';
import { buildTandemImage } from './image.js';

const command = process.argv[2];
if (command === 'up') {
  const { kubeconfig, started } = await startCluster(stderrProgress);
  if (!started) stderrProgress('reusing the control plane already running');
  process.stdout.write(`KUBECONFIG=${kubeconfig}\n`);
} else if (command === 'down') {
  process.stdout.write(
    (await stopCluster()) ? 'stopped the test control plane\n' : 'no test control plane was running\n',
  );
} else if (command === 'image') {
  const image = await buildTandemImage(stderrProgress);
  if ((await runningCluster())?.nodeBin) {
    loadImage(image);
    stderrProgress(`loaded ${image.ref} into the test cluster's real node`);
  }
  process.stdout.write(`${image.ref}\n`);
} else {
  process.stderr.write('usage: node dist/test/k8s/cli.js up|down|image\n');
  process.exitCode = 2;
}
