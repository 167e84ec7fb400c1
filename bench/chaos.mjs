// The long chaos soak (issue 12): `node bench/chaos.mjs [seconds]` (default 60) runs the soak
// of tests/support/chaos.mjs (two Miniflare isolates, one Redis cycling through faults, an
// origin failing on some keys) and prints origin offload, statuses, X-Cache counts, how soon
// Redis served hits again after each fault, and any violation. CHAOS_L1_BYTES=0 runs it
// without the L1, for comparison. Figures: bench/RESULTS.md.
import { formatReport, runSoak } from "../tests/support/chaos.mjs";

const seconds = Number(process.argv[2] ?? 60);
const vars = process.env.CHAOS_L1_BYTES === undefined ? {} : { CACHE_L1_BYTES: process.env.CHAOS_L1_BYTES };
const report = await runSoak({ seconds, concurrency: 10, vars, log: (line) => console.log(line) });
console.log(`chaos soak, ${seconds} s, concurrency 10, vars ${JSON.stringify(vars)}`);
for (const line of formatReport(report)) console.log(line);
process.exit(report.violations.length ? 1 : 0);
