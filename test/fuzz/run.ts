// `npm run fuzz`: longer runs than the suite's, from a seed given (FUZZ_SEED) or drawn and printed.
// FUZZ_SPEC_CASES and FUZZ_GATEWAY_CASES set the counts. Exit code 1 on any crash or leak.
import { fuzzSpecs } from './spec-fuzz.js';
import { gatewayFuzzSession } from './gateway-session.js';

const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const specCases = Number(process.env.FUZZ_SPEC_CASES ?? 20_000);
const gatewayCases = Number(process.env.FUZZ_GATEWAY_CASES ?? 2_000);
process.stdout.write(`seed ${seed}\n`);

let started = Date.now();
const spec = fuzzSpecs(seed, specCases);
process.stdout.write(
  `spec loader: ${spec.cases} cases, ${spec.accepted} accepted, ${spec.crashes.length} crashes (${Date.now() - started} ms)\n`,
);
for (const crash of spec.crashes.slice(0, 5)) process.stdout.write(`${crash}\n`);

started = Date.now();
const gw = await gatewayFuzzSession(seed, gatewayCases);
process.stdout.write(
  `gateway: ${gw.cases} cases, ${gw.internalErrors} internal errors, ${gw.outstanding} outstanding after, ${gw.clientConnections} client connections left, ` +
    `descriptors ${gw.descriptorsBefore} → ${gw.descriptorsAfter} (${Date.now() - started} ms)\n` +
    `  by kind: ${JSON.stringify(gw.byKind)}\n`,
);
const failed =
  spec.crashes.length > 0 ||
  gw.outstanding > 0 ||
  gw.clientConnections > 0 ||
  gw.descriptorsAfter > gw.descriptorsBefore;
process.exit(failed ? 1 : 0);
