// `npm run demo`: the whole flow on loopback. It starts the store simulator with the reference sample
// (404 while the "scan" lands, then the report), runs the built gate against it the way the Tekton
// Task does (settings in the environment, CA and token in files), and shows everything it prints.
// Extra arguments go to the gate: `npm run demo -- --format json`, `npm run demo -- --gate critical`.
import { spawn } from 'node:child_process'
import { cleanEnv, writeFiles } from './support/gate.ts'
import { answer, makeTls, repeat, SAMPLE_IMAGE, sampleImageBody, startSimulator, storeHandlers, TEST_TOKEN } from './support/simulator.ts'

const bundle = new URL('../dist/policy.mjs', import.meta.url).pathname
const tls = await makeTls('Demo Metadata Store CA')
const files = writeFiles({ caCrt: tls.caCert, token: TEST_TOKEN })
const store = await startSimulator(
  storeHandlers({ token: TEST_TOKEN, images: { [SAMPLE_IMAGE.split('@')[1]!]: [...repeat(2, answer.notFound()), answer.image(sampleImageBody())] } }),
  tls,
)
const env = { GATE: process.env.GATE ?? 'high', METADATA_STORE_URL: store.hostPort, ACCESS_TOKEN_FILE: files.token!, METADATA_STORE_CA_CERT: files.caCrt!, POLICY_POLL_INTERVAL: '1s' }
const args = [...process.argv.slice(2), SAMPLE_IMAGE]

console.error(`demo: a simulated Metadata Store listens on ${store.url}; it answers 404 twice (the scan is still landing), then the report.`)
console.error(`demo: running ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')} node dist/policy.mjs ${args.join(' ')}\n`)

const child = spawn(process.execPath, [bundle, ...args], { env: cleanEnv(env), stdio: 'inherit' })
const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
await store.close()

const meaning: Record<number, string> = { 0: 'passed', 1: 'policy violated: this is what a red pipeline shows', 2: 'invalid usage', 3: 'no verdict' }
console.error(`\ndemo: the gate exited ${code} (${meaning[code ?? -1] ?? 'unexpected'}).`)
// The demo worked if the gate reached a verdict, pass or fail.
process.exitCode = code === 0 || code === 1 ? 0 : (code ?? 1)
