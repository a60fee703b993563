// `npm run bench`: the gate beside its floor and the seed's curl/jq script, measured side by side in one run
// (rounds interleave the contenders, so machine noise falls on all of them), medians of several repetitions,
// reported as ratios. Not part of the test suite. Needs jq and GNU time (installed from Debian when missing).
//   npm run bench                 1, 10 and 50 MB bodies, 5 repetitions
//   BENCH_SIZES=1,10 BENCH_REPS=3 npm run bench
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process'
import { promisify } from 'node:util'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { evaluationCost } from '../gate/body-cost.ts'
import { evaluate } from '../gate/evaluate.ts'
import { writeFiles } from '../test/support/gate.ts'
import { startKubernetes, type ScanSpec } from '../test/support/kubernetes.ts'
import { REGISTRY_PASSWORD, REGISTRY_USER, startRegistry } from '../test/support/registry.ts'
import { answer, makeTls, startSimulator, storeHandlers, TEST_TOKEN, type Answer } from '../test/support/simulator.ts'
import { BENCH_DIGEST, ensureBody, ensureCycloneDx, ensureHostileBody, HOSTILE_SHAPES } from './generate.ts'

const SIZES = (process.env.BENCH_SIZES ?? '1,10,50').split(',').map(Number)
const REPS = Number(process.env.BENCH_REPS ?? 5)
const ROOT = new URL('..', import.meta.url).pathname
const BUNDLE = `${ROOT}dist/policy.mjs`
const NODE = process.execPath
const SEVERITY_WORDS = ['Critical', 'High', 'Medium', 'Low']

function ensureTools(): void {
  const missing = [
    ['jq', '/usr/bin/jq'],
    ['time', '/usr/bin/time'],
  ]
    .filter(([, path]) => !existsSync(path!))
    .map(([name]) => name!)
  if (missing.length === 0) return
  console.error(`bench: installing ${missing.join(' ')} from Debian`)
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' })
  execFileSync('apt-get', ['install', '-y', '-qq', ...missing], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  })
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

/** Wall time (ms, measured here: GNU time rounds to 10 ms) and peak RSS (MiB, from GNU time) of one command. */
function measure(command: string[]): { ms: number; rssMiB: number } {
  const started = performance.now()
  const result = spawnSync('/usr/bin/time', ['-f', '%M', ...command], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    maxBuffer: 1 << 30,
  })
  const ms = performance.now() - started
  const kib = Number(result.stderr.trim().split('\n').at(-1))
  if (!Number.isFinite(kib)) throw new Error(`bench: could not measure ${command.join(' ')}: ${result.stderr}`)
  return { ms, rssMiB: kib / 1024 }
}

/** Runs every contender once per round, REPS rounds; medians per contender. */
function sideBySide(contenders: Record<string, string[]>, reps = REPS): Record<string, { ms: number; rssMiB: number }> {
  const samples: Record<string, Array<{ ms: number; rssMiB: number }>> = Object.fromEntries(
    Object.keys(contenders).map((name) => [name, []]),
  )
  for (let round = 0; round < reps; round++)
    for (const [name, command] of Object.entries(contenders)) samples[name]!.push(measure(command))
  return Object.fromEntries(
    Object.entries(samples).map(([name, runs]) => [
      name,
      { ms: median(runs.map((run) => run.ms)), rssMiB: median(runs.map((run) => run.rssMiB)) },
    ]),
  )
}

/** In one process: JSON.parse alone against JSON.parse + evaluate, alternating. */
function inProcess(path: string): { parseMs: number; evaluateMs: number } {
  const text = readFileSync(path, 'utf8')
  const parse: number[] = []
  const full: number[] = []
  for (let round = 0; round < REPS + 1; round++) {
    let started = performance.now()
    JSON.parse(text)
    parse.push(performance.now() - started)
    started = performance.now()
    evaluate(JSON.parse(text), 'high', BENCH_DIGEST)
    full.push(performance.now() - started)
  }
  return { parseMs: median(parse.slice(1)), evaluateMs: median(full.slice(1)) }
}

const fmt = (value: number, digits = 0) => value.toFixed(digits)
const row = (cells: string[]) => `| ${cells.join(' | ')} |`

ensureTools()
execFileSync(NODE, [`${ROOT}build.mjs`], { stdio: 'inherit' })
console.log(
  `# amr-policy-gate benchmark: ${new Date().toISOString()}, Node ${process.version}, ${REPS} repetitions, medians\n`,
)

const startup = sideBySide(
  { "node -e ''": [NODE, '-e', ''], '--version': [NODE, BUNDLE, '--version'], '--help': [NODE, BUNDLE, '--help'] },
  Math.max(REPS, 11),
)
const bare = startup["node -e ''"]!
console.log('## Start-up\n')
const mark = (ok: boolean) => (ok ? 'met' : 'MISSED')
console.log(row(['command', 'ms', 'x bare node', 'peak RSS MiB', 'target: x bare node <= 2']))
console.log(row(['---', '---', '---', '---', '---']))
for (const [name, result] of Object.entries(startup)) {
  const ratio = result.ms / bare.ms
  console.log(
    row([name, fmt(result.ms), fmt(ratio, 2), fmt(result.rssMiB, 1), name.startsWith('--') ? mark(ratio <= 2) : '']),
  )
}

// The image: what the gate adds to its base (scripts/image.sh builds it on the base it resolves).
if (spawnSync('docker', ['info']).status === 0) {
  const built = spawnSync('bash', [`${ROOT}scripts/image.sh`], {
    encoding: 'utf8',
    env: { ...process.env, IMAGE: 'amr-policy-gate:bench' },
  })
  const added = /the base plus (\d+) KiB/.exec(built.stderr)?.[1]
  console.log(
    `\n| image | added to its base | target |\n| --- | --- | --- |\n| amr-policy-gate:bench | ` +
      `${added ? `${(Number(added) / 1024).toFixed(2)} MiB ${mark(Number(added) <= 2560)}` : `not built: ${built.stderr.trim().split('\n').at(-1)}`} | <= 2.5 MiB |`,
  )
}

console.log("\n## Evaluating a saved report (`--input`), against the JSON.parse floor and the seed's four jq passes\n")
console.log(
  row([
    'body',
    'gate ms',
    'floor ms',
    'seed jq ms',
    'gate / floor (<= 1.5)',
    'jq / gate (>= 20 at 50 MB)',
    'in-process (parse + evaluate) / parse',
    'gate RSS MiB',
    'floor RSS MiB',
    'seed jq RSS MiB',
    'gate RSS / (5 x body + bare node) (< 1)',
  ]),
)
console.log(row(Array(11).fill('---')))
for (const megabytes of SIZES) {
  const path = ensureBody(megabytes)
  const bodyMiB = statSync(path).size / 1024 / 1024
  const jqPasses = SEVERITY_WORDS.map(
    (word) =>
      `jq '[.Packages[].Vulnerabilities[] | select(.Ratings[].Severity | contains("${word}"))] | unique | length' ` +
      `${path} >/dev/null`,
  ).join(' && ')
  const results = sideBySide({
    // Beyond the default --max-body-size (24MiB, sized to the Task's 512Mi) at 50 MB: raised here to measure speed.
    gate: [NODE, BUNDLE, '--gate', 'high', '--max-body-size', '1GiB', '--input', path, BENCH_DIGEST],
    floor: [NODE, '-e', `JSON.parse(require('node:fs').readFileSync(${JSON.stringify(path)}, 'utf8'))`],
    seed: ['bash', '-c', jqPasses],
  })
  const gate = results.gate!
  const floor = results.floor!
  const seed = results.seed!
  const own = inProcess(path)
  const memoryBudget = 5 * bodyMiB + bare.rssMiB
  const speed = gate.ms / floor.ms
  const versusSeed = seed.ms / gate.ms
  const memory = gate.rssMiB / memoryBudget
  console.log(
    row([
      `${megabytes} MB`,
      fmt(gate.ms),
      fmt(floor.ms),
      fmt(seed.ms),
      `${fmt(speed, 2)} ${mark(speed <= 1.5)}`,
      `${fmt(versusSeed, 1)}${megabytes === 50 ? ` ${mark(versusSeed >= 20)}` : ''}`,
      fmt(own.evaluateMs / own.parseMs, 2),
      fmt(gate.rssMiB, 1),
      fmt(floor.rssMiB, 1),
      fmt(seed.rssMiB, 1),
      `${fmt(memory, 2)} ${mark(memory < 1)}`,
    ]),
  )
}
console.log(
  '\ngate: node dist/policy.mjs --gate high --input FILE; floor: node reading and JSON.parse-ing FILE, nothing else; ' +
    "seed: the TAP docs' four jq passes over FILE. Whole processes, so start-up counts.",
)

// The scanner's own CycloneDX (issue: straight from the scan): converted and judged by the same evaluation.
console.log("\n## A scanner's CycloneDX through `--input`, against the JSON.parse floor\n")
console.log(row(['body', 'gate ms', 'floor ms', 'gate / floor (<= 1.5)', 'gate RSS MiB']))
console.log(row(['---', '---', '---', '---', '---']))
for (const megabytes of SIZES) {
  const path = ensureCycloneDx(megabytes)
  const results = sideBySide({
    gate: [NODE, BUNDLE, '--gate', 'high', '--max-body-size', '1GiB', '--input', path],
    floor: [NODE, '-e', `JSON.parse(require('node:fs').readFileSync(${JSON.stringify(path)}, 'utf8'))`],
  })
  const ratio = results.gate!.ms / results.floor!.ms
  console.log(
    row([
      `${fmt(statSync(path).size / 1e6, 0)} MB`,
      fmt(results.gate!.ms),
      fmt(results.floor!.ms),
      `${fmt(ratio, 2)} ${mark(ratio <= 1.5)}`,
      fmt(results.gate!.rssMiB, 1),
    ]),
  )
}

// Through the store: TLS and undici load too. This sizes the Task's memory request and limit.
console.log("\n## Through the store (HTTPS simulator on loopback), for the Task's resources\n")
console.log(row(['body', 'gate ms', 'gate peak RSS MiB']))
console.log(row(['---', '---', '---']))
const tls = await makeTls()
const files = writeFiles({ ca: tls.caCert })
for (const [label, path] of [
  ['reference sample (5 CVEs)', `${ROOT}test/fixtures/image-sample.json`],
  ['10 MB', ensureBody(10)],
] as const) {
  const body = JSON.parse(readFileSync(path, 'utf8'))
  const digest = body.Digest as string
  const store = await startSimulator(
    storeHandlers({ token: TEST_TOKEN, images: { [digest]: [answer.image(body)] } }),
    tls,
  )
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    GATE: 'high',
    METADATA_STORE_URL: store.hostPort,
    ACCESS_TOKEN: TEST_TOKEN,
    METADATA_STORE_CA_CERT: files.ca!,
  }
  const runs: Array<{ ms: number; rssMiB: number }> = []
  for (let round = 0; round < REPS; round++) {
    const started = performance.now()
    // Asynchronous: the simulator answers from this process.
    const { stderr } = await promisify(execFile)('/usr/bin/time', ['-f', '%M', NODE, BUNDLE, digest], {
      env,
      maxBuffer: 1 << 30,
    }).catch((error: { stderr: string }) => error)
    runs.push({ ms: performance.now() - started, rssMiB: Number(stderr.trim().split('\n').at(-1)) / 1024 })
  }
  await store.close()
  console.log(row([label, fmt(median(runs.map((run) => run.ms))), fmt(median(runs.map((run) => run.rssMiB)), 1)]))
}

// From the scan to the verdict: the ImageVulnerabilityScan's results read straight from the registry as soon
// as the scan succeeds (--scan-result auto, watching the Kubernetes API), against waiting for the store, which
// receives the scan only after the AMR Observer has handled it (one scan at a time by default).
console.log(
  "\n## From the scan's success to the verdict: `--scan-result auto` against the store with an observer lag\n",
)
{
  const SCAN_AFTER_MS = 1_500
  const registry = await startRegistry('basic')
  const scan = readFileSync(ensureCycloneDx(1), 'utf8')
  const { digest } = await registry.push('project/bench-scan-results', 'uid', {
    layers: [{ files: { 'scan.cdx.json': scan } }],
  })
  const credentials = writeFiles({
    'config.json': JSON.stringify({
      auths: { [registry.host]: { username: REGISTRY_USER, password: REGISTRY_PASSWORD } },
    }),
    'registry-ca.crt': registry.tls.caCert,
    'store-ca.crt': tls.caCert,
  })
  const running: ScanSpec = { name: 'bench-trivy-scan-x', digest: BENCH_DIGEST }
  const succeeded: ScanSpec = {
    ...running,
    succeeded: { status: 'True' },
    scanResult: `${registry.host}/project/bench-scan-results@${digest}`,
  }
  const image = `registry.example.com/bench@${BENCH_DIGEST}`
  /** Milliseconds from the scan's success to the gate's exit, and the exit code. */
  const gateRun = (env: Record<string, string>) =>
    new Promise<number>((resolve) => {
      const child = spawn(NODE, [BUNDLE, '--gate', 'high', image], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
        stdio: 'ignore',
      })
      child.on('close', () => resolve(Date.now()))
    })
  const autoRuns: number[] = []
  const storeRuns: Record<string, number[]> = { '0 s': [], '10 s': [] }
  for (let round = 0; round < REPS; round++) {
    const kubernetes = await startKubernetes(tls, [[running], [succeeded]], { stepMs: SCAN_AFTER_MS })
    const ended = await gateRun({
      POLICY_SCAN_RESULT: 'auto',
      POLICY_REGISTRY_CONFIG: credentials['config.json']!,
      POLICY_REGISTRY_CA_CERT: credentials['registry-ca.crt']!,
      ...kubernetes.env,
    })
    autoRuns.push(ended - kubernetes.changes[0]!)
    await kubernetes.close()
    for (const [lag, lagMs] of [
      ['0 s', 0],
      ['10 s', 10_000],
    ] as const) {
      const body = JSON.parse(readFileSync(`${ROOT}test/fixtures/image-sample.json`, 'utf8'))
      let succeededAt = Number.POSITIVE_INFINITY
      const inStore: Answer = () => (Date.now() >= succeededAt + lagMs ? answer.image(body)() : answer.notFound()())
      const store = await startSimulator(
        storeHandlers({ token: TEST_TOKEN, images: { [BENCH_DIGEST]: [inStore] } }),
        tls,
      )
      succeededAt = Date.now() + SCAN_AFTER_MS
      const storeEnded = await gateRun({
        METADATA_STORE_URL: store.hostPort,
        ACCESS_TOKEN: TEST_TOKEN,
        METADATA_STORE_CA_CERT: credentials['store-ca.crt']!,
      })
      storeRuns[lag]!.push(storeEnded - succeededAt)
      await store.close()
    }
  }
  await registry.close()
  const autoMedian = median(autoRuns)
  console.log(row(['source', 'scan succeeded -> verdict, median ms', 'target']))
  console.log(row(['---', '---', '---']))
  console.log(
    row(['--scan-result auto (watch, then the registry)', fmt(autoMedian), `< 2000 ${mark(autoMedian < 2_000)}`]),
  )
  for (const [lag, runs] of Object.entries(storeRuns))
    console.log(row([`the store, observer lag ${lag}, default --poll-interval 5s`, fmt(median(runs)), '']))
  console.log(
    `\nauto: the scan turns Succeeded ${SCAN_AFTER_MS} ms into the run, on a watch; the gate then reads a 1 MB ` +
      `CycloneDX from Debian's docker-registry (TLS, htpasswd). store: the body lands ${SCAN_AFTER_MS} ms + the lag ` +
      `into the run.`,
  )
}

// Memory against body size: what sizes the default --max-body-size and the Task's limits.memory (README, Memory).
console.log(
  '\n## Memory against body size: peak RSS, the estimate the gate refuses by, and what the Task can evaluate\n',
)
console.log(row(['body', 'MB', 'gate peak RSS MiB', "gate's estimate MiB", 'exit (3 = refused before parsing)']))
console.log(row(['---', '---', '---', '---', '---']))
const memoryBodies: Array<[string, string]> = [
  ...[...new Set([1, 10, 25, ...SIZES])]
    .sort((a, b) => a - b)
    .map((megabytes): [string, string] => [`realistic ${megabytes} MB`, ensureBody(megabytes)]),
  ...(Object.keys(HOSTILE_SHAPES) as Array<keyof typeof HOSTILE_SHAPES>).map((shape): [string, string] => [
    `${shape} 10 MB`,
    ensureHostileBody(shape, 10),
  ]),
]
for (const [label, path] of memoryBodies) {
  const bytes = readFileSync(path)
  const result = spawnSync(
    '/usr/bin/time',
    ['-f', '%M', NODE, BUNDLE, '--gate', 'high', '--max-body-size', '1GiB', '--input', path, BENCH_DIGEST],
    { encoding: 'utf8', maxBuffer: 1 << 30 },
  )
  const rssMiB = Number(result.stderr.trim().split('\n').at(-1)) / 1024
  console.log(
    row([
      label,
      fmt(bytes.length / 1e6, 1),
      fmt(rssMiB, 0),
      fmt(evaluationCost(bytes) / 2 ** 20, 0),
      String(result.status ?? result.signal),
    ]),
  )
}

// The Task's own condition: the image's base in a container with the Task's memory limit, every body shape.
const base = process.env.BASE_IMAGE ?? 'localhost/distroless-nodejs24:nonroot'
if (spawnSync('docker', ['image', 'inspect', base]).status === 0) {
  console.log(
    `\n### In a container with the Task's limits.memory (${base}, --max-body-size 1GiB): exit per body size\n`,
  )
  const sizes = [5, 10, 20, 30, 40]
  console.log(row(['limit', 'body', ...sizes.map((megabytes) => `${megabytes} MB`)]))
  console.log(row(Array(sizes.length + 2).fill('---')))
  for (const limit of ['512m', '1g']) {
    for (const [label, ensure] of [
      ['realistic', ensureBody],
      ...(Object.keys(HOSTILE_SHAPES) as Array<keyof typeof HOSTILE_SHAPES>).map((shape) => [
        shape,
        (megabytes: number) => ensureHostileBody(shape, megabytes),
      ]),
    ] as Array<[string, (megabytes: number) => string]>) {
      const cells = sizes.map((megabytes) => {
        const path = ensure(megabytes)
        const run = spawnSync(
          'docker',
          [
            'run',
            '--rm',
            '--network',
            'host',
            '--memory',
            limit,
            '-v',
            `${path}:/data/body.json:ro`,
            '-v',
            `${ROOT}dist:/app:ro`,
            '--entrypoint',
            '/nodejs/bin/node',
            base,
            '/app/policy.mjs',
            '--gate',
            'high',
            '--max-body-size',
            '1GiB',
            '--input',
            '/data/body.json',
            BENCH_DIGEST,
          ],
          { encoding: 'utf8', maxBuffer: 1 << 30 },
        )
        return run.status === 3 && /needs about/.test(run.stderr) ? 'refused' : String(run.status)
      })
      console.log(row([limit, label, ...cells]))
    }
  }
  console.log(
    '\n0 or 1: a verdict; refused: exit 3 BODY_TOO_LARGE before parsing. 134 (V8 out of memory) or 137 (killed by ' +
      'the limit) must never appear.',
  )
} else {
  console.log(`\n(no Docker image ${base}: the in-container table needs scripts/base-image.sh)`)
}
