// `npm run demo`: the whole flow on loopback. It starts the store simulator with the reference sample
// (404 while the "scan" lands, then the report), runs the gate against it the way the Tekton Task does
// (settings in the environment, CA and token in files), and shows everything it prints.
//   npm run demo -- --format json        extra arguments go to the gate
//   DEMO_IMAGE=amr-policy-gate:0.1.0 npm run demo   the same with `docker run` of the built image
import { spawn } from 'node:child_process'
import { chmodSync } from 'node:fs'
import { dirname } from 'node:path'
import { cleanEnv, writeFiles } from './support/gate.ts'
import { SAMPLE_DIGEST, SAMPLE_IMAGE, sampleImageBody } from './support/documents.ts'
import { answer, makeTls, repeat, startSimulator, storeHandlers, TEST_TOKEN } from './support/simulator.ts'

const tls = await makeTls('Demo Metadata Store CA')
const files = writeFiles({ caCrt: tls.caCert, accessToken: TEST_TOKEN })
const store = await startSimulator(
  storeHandlers({
    token: TEST_TOKEN,
    images: { [SAMPLE_DIGEST]: [...repeat(2, answer.notFound()), answer.image(sampleImageBody())] },
  }),
  tls,
)
const settings = { GATE: process.env.GATE ?? 'high', METADATA_STORE_URL: store.hostPort, POLICY_POLL_INTERVAL: '1s' }
const args = [...process.argv.slice(2), SAMPLE_IMAGE]

let command: string[]
if (process.env.DEMO_IMAGE) {
  // As in the Task: the CA at /var/cert/caCrt and the token as a file, read-only, readable by uid 65532.
  chmodSync(dirname(files.caCrt!), 0o755)
  for (const path of Object.values(files)) chmodSync(path, 0o644)
  const env = { ...settings, ACCESS_TOKEN_FILE: '/var/run/secrets/metadata-store/accessToken' }
  command = [
    'docker',
    'run',
    '--rm',
    '--network',
    'host',
    '--read-only',
    '-v',
    `${files.caCrt}:/var/cert/caCrt:ro`,
    '-v',
    `${files.accessToken}:${env.ACCESS_TOKEN_FILE}:ro`,
    ...Object.entries(env).flatMap(([name, value]) => ['-e', `${name}=${value}`]),
    process.env.DEMO_IMAGE,
    ...args,
  ]
} else {
  const env = { ...settings, ACCESS_TOKEN_FILE: files.accessToken!, METADATA_STORE_CA_CERT: files.caCrt! }
  command = [
    'env',
    ...Object.entries(env).map(([name, value]) => `${name}=${value}`),
    process.execPath,
    new URL('../dist/policy.mjs', import.meta.url).pathname,
    ...args,
  ]
}

console.error(
  `demo: a simulated Metadata Store listens on ${store.url}; it answers 404 twice (the scan is still landing), then ` +
    `the report.`,
)
console.error(`demo: running ${command.join(' ')}\n`)
const child = spawn(command[0]!, command.slice(1), { env: cleanEnv(), stdio: 'inherit' })
const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
await store.close()

const meaning: Record<number, string> = {
  0: 'passed',
  1: 'policy violated: this is what a red pipeline shows',
  2: 'invalid usage',
  3: 'no verdict',
}
console.error(`\ndemo: the gate exited ${code} (${meaning[code ?? -1] ?? 'unexpected'}).`)
// The demo worked if the gate reached a verdict, pass or fail.
process.exitCode = code === 0 || code === 1 ? 0 : (code ?? 1)
