// Several gateways, one load: a gateway's autoscaler adds what its peers last reported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedLoad } from '../../src/autoscaler/shared-load.js';
import type { LoadSource } from '../../src/core/serving.js';

const local: LoadSource = {
  load: (model) => (model === 'm' ? { requests: 2, queued: 1 } : { requests: 0, queued: 0 }),
  serving: (id) => (id === 'm/0' ? 2 : 0),
  retire: () => undefined,
};

test("a peer's load and its replicas' requests count, until its report is stale", () => {
  let now = 0;
  const shared = new SharedLoad(local, () => now, 5_000);
  assert.deepEqual(shared.load('m'), { requests: 2, queued: 1 });
  shared.update('10.0.0.2:9090', { models: { m: { requests: 3, queued: 0 } }, serving: { 'm/0': 1, 'm/1': 2 } });
  shared.update('10.0.0.3:9090', { models: { other: { requests: 5, queued: 5 } }, serving: {} });
  assert.deepEqual(shared.load('m'), { requests: 5, queued: 1 });
  assert.equal(shared.serving('m/0'), 3);
  assert.equal(shared.serving('m/1'), 2, 'a replica this gateway does not serve, another does: it is not idle');
  now = 5_001; // the peers stopped answering (gone, or cut off): their load goes with them
  assert.deepEqual(shared.load('m'), { requests: 2, queued: 1 });
  assert.equal(shared.serving('m/1'), 0);
  assert.deepEqual(shared.fresh(), []);
});
