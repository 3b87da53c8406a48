// Container images built offline, without a registry or a container engine: a root filesystem in a
// folder, one uncompressed layer made by tar, and the OCI image layout (config, manifest, index)
// around it, as one archive that `ctr images import` loads. Two images: Tandem's (Node, Tandem's
// compiled code with its production dependencies, and llama.cpp's binaries where the
// ghcr.io/ggml-org/llama.cpp:full image keeps them), and the pod sandbox's pause, compiled from
// the Kubernetes module's own pause.c.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureLlamaBinaries } from '../../src/engine/llamacpp/build.js';
import { LLAMACPP_IN_IMAGE } from '../../src/platforms/kubernetes/render.js';
import { cacheDir } from '../../src/util/paths.js';
import type { Progress } from '../../src/util/progress.js';

const ROOT = join(fileURLToPath(import.meta.url), '../../../..');

/** Where the test cluster's images are written, one archive per content. */
const imagesDir = () => join(cacheDir(), 'k8s', 'images');

export interface Image {
  /** The reference pods name it by (no registry serves it: pods use what the node has). */
  ref: string;
  /** An OCI image layout archive for `ctr images import`. */
  archive: string;
}

interface ImageConfig {
  entrypoint: string[];
  env: string[];
}

/** Tar of `rootfs` (sorted, owned by root, time 0: the same files give the same digest), wrapped as an OCI layout. */
function writeImage(rootfs: string, name: string, config: ImageConfig): Image {
  const work = `${rootfs}.oci`;
  rmSync(work, { recursive: true, force: true });
  const blobs = join(work, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const layerTmp = join(work, 'layer.tar');
  execFileSync('tar', [
    '--sort=name',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '--mtime=@0',
    '-cf',
    layerTmp,
    '-C',
    rootfs,
    '.',
  ]);
  const blob = (data: Buffer | string, mediaType: string) => {
    const digest = createHash('sha256').update(data).digest('hex');
    writeFileSync(join(blobs, digest), data);
    return { mediaType, digest: `sha256:${digest}`, size: Buffer.byteLength(data) };
  };
  const layerData = readFileSync(layerTmp);
  rmSync(layerTmp);
  const layer = blob(layerData, 'application/vnd.oci.image.layer.v1.tar');
  const imageConfig = blob(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Entrypoint: config.entrypoint, Env: config.env, WorkingDir: '/' },
      rootfs: { type: 'layers', diff_ids: [layer.digest] },
    }),
    'application/vnd.oci.image.config.v1+json',
  );
  const manifest = blob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: imageConfig,
      layers: [layer],
    }),
    'application/vnd.oci.image.manifest.v1+json',
  );
  // The tag is the content's: a changed image is a new reference, so pods never run a stale one.
  const ref = `localhost/${name}:${layer.digest.slice(7, 19)}`;
  writeFileSync(join(work, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(work, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          ...manifest,
          annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': ref.split(':')[1] },
        },
      ],
    }),
  );
  const archive = join(imagesDir(), `${name}-${layer.digest.slice(7, 19)}.tar`);
  if (!existsSync(archive)) execFileSync('tar', ['-cf', archive, '-C', work, 'oci-layout', 'index.json', 'blobs']);
  rmSync(work, { recursive: true, force: true });
  return { ref, archive };
}

/** Shared libraries a dynamically linked program loads (ldd), at the paths it loads them from. */
function sharedLibraries(program: string): string[] {
  return execFileSync('ldd', [program], { encoding: 'utf8' })
    .split('\n')
    .map((line) => /(\/\S+) \(0x/.exec(line)?.[1])
    .filter((path): path is string => path !== undefined);
}

/** Copies `files` (following links) to the same paths under `rootfs`. */
function install(rootfs: string, files: Record<string, string>, mode = 0o755): void {
  for (const [to, from] of Object.entries(files)) {
    mkdirSync(join(rootfs, dirname(to)), { recursive: true });
    copyFileSync(from, join(rootfs, to));
    chmodSync(join(rootfs, to), mode);
  }
}

/**
 * The packages Tandem needs at run time, found as Node resolves them: from `dependencies`, leaving
 * out node-llama-cpp (only its llama.cpp source is used, when building; the image has the binaries).
 */
function productionPackages(): string[] {
  const found = new Set<string>();
  const visit = (from: string, name: string) => {
    for (let dir = from; ; dir = dirname(dir)) {
      const candidate = join(dir, 'node_modules', name);
      if (existsSync(join(candidate, 'package.json'))) {
        if (found.has(candidate)) return;
        found.add(candidate);
        const pkg = JSON.parse(readFileSync(join(candidate, 'package.json'), 'utf8')) as {
          dependencies?: Record<string, string>;
          optionalDependencies?: Record<string, string>;
        };
        for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) visit(candidate, dep);
        return;
      }
      if (dir === ROOT || dir === dirname(dir)) return; // optional and not installed
    }
  };
  const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  for (const dep of Object.keys(root.dependencies)) if (dep !== 'node-llama-cpp') visit(ROOT, dep);
  return [...found];
}

const IN_IMAGE = '/opt/tandem';
const BUSYBOX_APPLETS = ['sh', 'ls', 'cat', 'ps', 'kill', 'pkill', 'sleep', 'nc', 'env', 'id'];

/** Tandem's image from this checkout's compiled code (run `tsc` first) and the cached llama.cpp build. */
export async function buildTandemImage(progress: Progress): Promise<Image> {
  const llama = await ensureLlamaBinaries(progress);
  progress('building the Tandem image (Node, Tandem, llama.cpp) without a registry');
  const rootfs = join(imagesDir(), 'tandem-rootfs');
  rmSync(rootfs, { recursive: true, force: true });
  const programs = {
    '/usr/local/bin/node': process.execPath,
    [LLAMACPP_IN_IMAGE.llamaServer]: llama.llamaServer,
    [LLAMACPP_IN_IMAGE.rpcServer]: llama.rpcServer,
  };
  install(rootfs, programs);
  const libraries = new Set(Object.values(programs).flatMap(sharedLibraries));
  install(rootfs, Object.fromEntries([...libraries].map((l) => [l, l])));
  install(rootfs, { '/bin/busybox': '/bin/busybox' });
  for (const applet of BUSYBOX_APPLETS) symlinkSync('busybox', join(rootfs, 'bin', applet));
  // Tandem: package.json (its version), the launcher, the compiled product code, its packages.
  const app = join(rootfs, IN_IMAGE);
  mkdirSync(app, { recursive: true });
  copyFileSync(join(ROOT, 'package.json'), join(app, 'package.json'));
  cpSync(join(ROOT, 'bin'), join(app, 'bin'), { recursive: true });
  cpSync(join(ROOT, 'dist', 'src'), join(app, 'dist', 'src'), { recursive: true });
  for (const pkg of productionPackages()) {
    cpSync(pkg, join(app, pkg.slice(ROOT.length)), {
      recursive: true,
      filter: (src) => src === pkg || !src.startsWith(join(pkg, 'node_modules')), // nested ones are visited on their own
    });
  }
  mkdirSync(join(rootfs, 'etc'), { recursive: true });
  writeFileSync(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532::/tmp:/bin/sh\n');
  writeFileSync(join(rootfs, 'etc', 'group'), 'root:x:0:\nnonroot:x:65532:\n');
  writeFileSync(join(rootfs, 'etc', 'nsswitch.conf'), 'hosts: files dns\n');
  mkdirSync(join(rootfs, 'tmp'), { mode: 0o1777 });
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  const image = writeImage(rootfs, 'tandem', {
    entrypoint: ['/usr/local/bin/node', `${IN_IMAGE}/bin/tandem.js`],
    env: ['PATH=/usr/local/bin:/bin:/app', 'HOME=/tmp'],
  });
  rmSync(rootfs, { recursive: true, force: true });
  pruneImages();
  progress(`image ${image.ref} (${Math.round(statSync(image.archive).size / 2 ** 20)} MiB): ${image.archive}`);
  return image;
}

/** The sandbox image every pod starts with: pause.c, linked statically. */
export function buildPauseImage(pauseSource: string): Image {
  const rootfs = join(imagesDir(), 'pause-rootfs');
  rmSync(rootfs, { recursive: true, force: true });
  mkdirSync(rootfs, { recursive: true });
  execFileSync('gcc', ['-Os', '-static', '-o', join(rootfs, 'pause'), pauseSource]);
  const image = writeImage(rootfs, 'pause', { entrypoint: ['/pause'], env: [] });
  rmSync(rootfs, { recursive: true, force: true });
  return image;
}

/** Every archive but the newest few (each run of a changed checkout writes one). */
function pruneImages(keep = 4): void {
  if (!existsSync(imagesDir())) return;
  const archives = readdirSync(imagesDir())
    .filter((f) => f.endsWith('.tar'))
    .map((f) => join(imagesDir(), f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  for (const old of archives.slice(keep)) rmSync(old);
}
