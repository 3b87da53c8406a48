// Embeddings through the Python `openai` client (the one RAG code uses), from the virtualenv this
// tier installs vLLM into (vLLM depends on it), against a llama.cpp embedding service behind the
// gateway: a list of inputs, floats, base64 decoded by the client, and base64 asked for explicitly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ensureVllm } from '../../src/engine/vllm/install.js';
import { silentProgress } from '../../src/util/progress.js';
import { localGateway, startServices, tinySpec } from '../helpers.js';

const SCRIPT = `
import base64, struct, sys, openai
client = openai.OpenAI(base_url=sys.argv[1], api_key="unused", max_retries=0)
floats = client.embeddings.create(model="emb-model", input=["first text", "second text"], encoding_format="float")
assert [d.index for d in floats.data] == [0, 1], floats
width = len(floats.data[0].embedding)
assert width > 0 and all(len(d.embedding) == width for d in floats.data)
assert floats.usage.prompt_tokens > 0
decoded = client.embeddings.create(model="emb-model", input=["first text", "second text"])
for d, f in zip(decoded.data, floats.data):
    assert all(abs(a - b) < 1e-5 for a, b in zip(d.embedding, f.embedding))
raw = client.embeddings.create(model="emb-model", input="first text", encoding_format="base64")
packed = base64.b64decode(raw.data[0].embedding)
values = struct.unpack(f"<{len(packed) // 4}f", packed)
assert all(abs(a - b) < 1e-4 for a, b in zip(values, floats.data[0].embedding))
print(f"ok {width} {floats.usage.prompt_tokens}")
`;

test('embeddings through the Python openai client: a list, floats, base64 decoded and raw alike', async () => {
  const { python } = await ensureVllm(silentProgress);
  const running = await startServices([
    tinySpec('emb', { model: { servedName: 'emb-model', source: 'tandem://tiny-llama', task: 'embed' } }),
  ]);
  const gateway = localGateway(running.reconciler, { host: '127.0.0.1', port: 0 });
  await gateway.listen();
  try {
    // Not spawnSync: the gateway answering it runs on this process's event loop.
    const { stdout } = await promisify(execFile)(python, ['-c', SCRIPT, `${gateway.url}/v1`], { timeout: 120_000 });
    assert.match(stdout, /^ok \d+ \d+$/m);
  } finally {
    await gateway.close();
    await running.stop();
  }
});
