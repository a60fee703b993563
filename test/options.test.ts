// The command line: the image reference, durations, sizes, gates, the store URL, flags and their variables,
// usage errors before any request, --help and --version; unit tests of the parsers, then the built gate.
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { parseArgs } from '../gate/input.ts'
import { resolveConfig } from '../gate/options.ts'
import { EXIT, EXIT_CODES, OPTIONS, UsageError } from '../gate/vocabulary.ts'
import { cleanImageBody, SAMPLE_DIGEST, SAMPLE_IMAGE, sampleImageBody } from './support/documents.ts'
import { useStoreFixture } from './support/fixture.ts'
import { runGate, writeFiles } from './support/gate.ts'
import { startConnectProxy } from './support/proxy.ts'
import { answer, TEST_TOKEN, type Tls } from './support/simulator.ts'

const fixture = useStoreFixture()
const { serve, gate } = fixture

let files: Record<string, string>
let tls: Tls

beforeAll(() => {
  files = {
    ...fixture.files,
    'sample.json': writeFiles({ 'sample.json': JSON.stringify(sampleImageBody()) })['sample.json']!,
  }
  tls = fixture.tls
})

describe('parseArgs and resolveConfig', () => {
  const TOKEN = 'a-token-of-twenty-chars'
  const environment = (env: Record<string, string>, files: string[] = []) => ({
    env,
    fileExists: (path: string) => files.includes(path),
    isDirectory: (path: string) => path === '/tekton/results' || path === '/reports',
    isWritableDirectory: (path: string) => path === '/tekton/results' || path === '/reports' || path === '.',
  })
  const resolve = (argv: string[], env: Record<string, string> = {}, files: string[] = []) => {
    const args = parseArgs(argv)
    if (args.kind !== 'run') throw new Error(`expected a run, got ${args.kind}`)
    return resolveConfig(args.values, args.positionals, environment(env, files))
  }
  const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'

  it('takes every setting from the seed Task environment', () => {
    const config = resolve(
      [SAMPLE_DIGEST],
      { GATE: 'High', METADATA_STORE_URL: 'store.example.com', ACCESS_TOKEN: ` ${TOKEN}\n` },
      ['/var/cert/caCrt'],
    )
    expect(config.gate).toBe('high')
    expect(config.timeoutMs).toBe(1_800_000)
    expect(config.source).toMatchObject({
      store: { token: { value: TOKEN }, ca: { file: '/var/cert/caCrt' }, pollIntervalMs: 5_000, proxied: false },
    })
  })

  it('lets flags win over the environment, in both --flag value and --flag=value forms', () => {
    const config = resolve(['--gate=low', '--timeout', '10s', '--url', 'a.example.com', SAMPLE_DIGEST], {
      GATE: 'critical',
      POLICY_TIMEOUT: '1h',
      ACCESS_TOKEN: TOKEN,
    })
    expect(config.gate).toBe('low')
    expect(config.timeoutMs).toBe(10_000)
  })

  it('takes the token file named by --token-file before ACCESS_TOKEN', () => {
    const config = resolve(['--gate', 'high', '--url', 'a.example.com', '--token-file', '/t', SAMPLE_DIGEST], {
      ACCESS_TOKEN: TOKEN,
    })
    expect(config.source).toMatchObject({ store: { token: { file: '/t', origin: '--token-file' } } })
  })

  it('accepts the PEM itself in METADATA_STORE_CA_CERT, as the seed docs put it there', () => {
    const config = resolve([SAMPLE_DIGEST], {
      GATE: 'high',
      METADATA_STORE_URL: 'a',
      ACCESS_TOKEN: TOKEN,
      METADATA_STORE_CA_CERT: CA,
    })
    expect(config.source).toMatchObject({ store: { ca: { pem: CA, origin: 'METADATA_STORE_CA_CERT' } } })
  })

  it.each([['store'], [' Store '], ['']])(
    "reads the store for --scan-result %j, how a workload takes back a chain's auto",
    (value) => {
      const config = resolve([SAMPLE_DIGEST], {
        GATE: 'high',
        METADATA_STORE_URL: 'a',
        ACCESS_TOKEN: TOKEN,
        POLICY_SCAN_RESULT: value,
      })
      expect(config.source).toHaveProperty('store')
      expect(config.source).not.toHaveProperty('scanResult')
    },
  )

  it('needs neither store nor token for gate none', () => {
    expect(resolve(['--gate', 'none', SAMPLE_DIGEST])).toEqual({
      image: { reference: SAMPLE_DIGEST, digest: SAMPLE_DIGEST },
      gate: 'none',
      format: 'text',
      mode: 'enforce',
      unknownAs: 'ignore',
      triage: false,
      onlyFixed: false,
      maxBodyBytes: 24 * 1024 * 1024,
      timeoutMs: 1_800_000,
      warnAt: 'none',
    })
  })

  it.each([
    ['no gate', [SAMPLE_DIGEST], {}, /no gate given/],
    ['no store', ['--gate', 'high', SAMPLE_DIGEST], {}, /no store given/],
    ['no token', ['--gate', 'high', '--url', 'a', SAMPLE_DIGEST], {}, /no token given: set ACCESS_TOKEN/],
    [
      'an empty token',
      ['--gate', 'high', '--url', 'a', SAMPLE_DIGEST],
      { ACCESS_TOKEN: '  ' },
      /ACCESS_TOKEN is empty/,
    ],
    [
      'a token with spaces',
      ['--gate', 'high', '--url', 'a', SAMPLE_DIGEST],
      { ACCESS_TOKEN: 'two words of a long token' },
      /spaces or non-ASCII/,
    ],
    [
      'a token too short to redact safely',
      ['--gate', 'high', '--url', 'a', SAMPLE_DIGEST],
      { ACCESS_TOKEN: 'abc' },
      /ACCESS_TOKEN has 3 characters, too short to be a real one/,
    ],
    [
      'an empty --token-file',
      ['--gate', 'high', '--url', 'a', '--token-file', '', SAMPLE_DIGEST],
      {},
      /--token-file is empty/,
    ],
    ['two images', ['--gate', 'high', SAMPLE_DIGEST, SAMPLE_DIGEST], {}, /one image at a time/],
    ['an unknown option', ['--gat', 'high'], {}, /unknown option --gat/],
    ['a --token flag', ['--token', 'abc'], {}, /never from a flag/],
    ['a flag without its value', ['--gate'], {}, /--gate needs a value/],
    ['an unknown format', ['--gate', 'high', '--format', 'xml', SAMPLE_DIGEST], {}, /--format "xml" is not a format/],
    [
      'TLS verification switched off',
      ['--gate', 'high', SAMPLE_DIGEST],
      { NODE_TLS_REJECT_UNAUTHORIZED: '0' },
      /NODE_TLS_REJECT_UNAUTHORIZED=0/,
    ],
    [
      'an impossible --newer-than',
      ['--gate', 'high', '--newer-than', '2026-11-28T25:00:00Z', SAMPLE_DIGEST],
      {},
      /--newer-than "2026-11-28T25:00:00Z" is not a real time/,
    ],
    [
      'HTTPS_PROXY that is not a URL',
      ['--gate', 'high', '--url', 'a', SAMPLE_DIGEST],
      { ACCESS_TOKEN: TOKEN, HTTPS_PROXY: 'not a url' },
      /HTTPS_PROXY is not a proxy URL/,
    ],
    [
      'a socks proxy',
      ['--gate', 'high', '--url', 'a', SAMPLE_DIGEST],
      { ACCESS_TOKEN: TOKEN, https_proxy: 'socks5://127.0.0.1:1080' },
      /https_proxy is not a proxy URL/,
    ],
    [
      'a URL whose scheme lost a slash',
      ['--gate', 'high', '--url', 'http:/host:8443', SAMPLE_DIGEST],
      { ACCESS_TOKEN: TOKEN },
      /--url "http:\/host:8443" has a malformed scheme/,
    ],
    ['an empty --report-file', ['--gate', 'high', '--report-file', '', SAMPLE_DIGEST], {}, /--report-file "" is empty/],
    [
      'a --report-file ending in /',
      ['--gate', 'high', '--report-file', 'out/', SAMPLE_DIGEST],
      {},
      /--report-file "out\/" is a folder/,
    ],
    [
      'a --report-file that is a folder',
      ['--gate', 'high', '--report-file', '/reports', SAMPLE_DIGEST],
      {},
      /--report-file "\/reports" is a folder/,
    ],
    [
      'a --report-file in a missing folder',
      ['--gate', 'high', '--report-file', '/nope/r.json', SAMPLE_DIGEST],
      {},
      /its folder is missing or not writable/,
    ],
    ['an empty --results-dir', ['--gate', 'high', '--results-dir', '', SAMPLE_DIGEST], {}, /--results-dir is empty/],
    ['an empty --input', ['--gate', 'high', '--input', '', SAMPLE_DIGEST], {}, /--input is empty/],
  ])('refuses %s with a usage error', (_name, argv, env, message) => {
    expect(() => resolve(argv as string[], env as Record<string, string>)).toThrow(UsageError)
    expect(() => resolve(argv as string[], env as Record<string, string>)).toThrow(message)
  })

  it('checks output paths for every gate, before any request', () => {
    expect(
      resolve([
        '--gate',
        'high',
        '--input',
        'x.json',
        '--report-file',
        '/reports/r.sarif',
        '--results-dir',
        '/tekton/results',
        SAMPLE_DIGEST,
      ]),
    ).toMatchObject({
      report: { path: '/reports/r.sarif', format: 'sarif' },
      resultsDir: '/tekton/results',
    })
  })

  it.each([['--help'], ['-h'], ['--gate', 'x', '--help'], ['--gat', 'x', '--help'], ['--gate', '--help']])(
    '%s asks for help before anything is checked',
    (...argv) => {
      expect(parseArgs(argv).kind).toBe('help')
    },
  )

  it('reads --help after -- as an image, not as a request for help', () => {
    expect(parseArgs(['--gate', 'high', '--', '--help'])).toMatchObject({ kind: 'run', positionals: ['--help'] })
  })

  it.each([
    [['--gate', 'high', '--gate', 'none'], '--gate is given twice ("high", then "none"): give it once'],
    [['--triage', '--triage'], '--triage is given twice'],
    [['--format=json', '--format', 'json'], '--format is given twice'],
  ])('refuses a repeated flag %j: which one was meant must not be a guess', (argv, message) => {
    expect(() => parseArgs(argv)).toThrow(message)
  })

  it('gives every option with choices a default among them, or says why it has none', () => {
    for (const option of OPTIONS) {
      if (option.choices && !option.required && !option.defaultText)
        expect(option.choices, option.flag).toContain(option.default)
    }
  })
})

describe('input and configuration', () => {
  it('exits 0 for gate none without asking the store', async () => {
    await serve([answer.image(sampleImageBody())])
    const run = await gate([], { GATE: 'NONE' })
    expect(run.code).toBe(EXIT.PASS)
    expect(run.stderr).toContain('gate none: no policy enforced')
    expect(fixture.store.requests).toHaveLength(0)
  })

  it.each([
    [
      'an unknown gate',
      ['--gate', 'severe', SAMPLE_IMAGE],
      {},
      '--gate "severe" is not a gate: use none, low, medium, high or critical',
    ],
    ['an image without a digest', ['--gate', 'high', 'registry.example.com/app:latest'], {}, 'has no sha256 digest'],
    ['a missing token', ['--gate', 'high', '--url', 'localhost:1', SAMPLE_IMAGE], {}, 'no token given'],
    [
      'an http:// store',
      ['--gate', 'high', '--url', 'http://localhost:1', SAMPLE_IMAGE],
      { ACCESS_TOKEN: TEST_TOKEN },
      'the token would travel in clear',
    ],
    [
      'TLS checks switched off',
      ['--gate', 'high', SAMPLE_IMAGE],
      { NODE_TLS_REJECT_UNAUTHORIZED: '0' },
      'NODE_TLS_REJECT_UNAUTHORIZED=0 would send the token',
    ],
    ['a token passed as a flag', ['--token', TEST_TOKEN, SAMPLE_IMAGE], {}, 'never from a flag'],
  ])('exits 2 on %s with a one-line fix and no stack', async (_name, args, env, message) => {
    const run = await runGate(args, { env })
    expect(run.code).toBe(EXIT.USAGE)
    expect(run.stderr).toContain(message)
    expect(run.stderr).toContain('run with --help for usage')
    expect(run.stderr).not.toMatch(/\n\s+at /)
    expect(run.stdout).toBe('')
  })

  it('evaluates a saved report from a file or stdin without a store', async () => {
    const fromFile = await runGate(['--gate', 'critical', '--input', files['sample.json']!, SAMPLE_DIGEST])
    expect(fromFile.code).toBe(EXIT.VIOLATION)
    expect(fromFile.stdout).toContain('FAIL: 2 vulnerabilities (2 findings) block at gate critical.')
    const fromStdin = await runGate(['--gate', 'low', '--input', '-', SAMPLE_DIGEST], {
      stdin: JSON.stringify(cleanImageBody()),
    })
    expect(fromStdin.code).toBe(EXIT.PASS)
    const broken = await runGate(['--gate', 'low', '--input', '-', SAMPLE_DIGEST], { stdin: 'not json' })
    expect(broken.code).toBe(EXIT.NO_VERDICT)
  })

  it('writes one JSON document with the verdict, counts and blocking findings', async () => {
    await serve([answer.notFound(), answer.image(sampleImageBody())])
    const run = await gate(['--format', 'json'])
    expect(run.code).toBe(EXIT.VIOLATION)
    const report = JSON.parse(run.stdout)
    expect(report).toMatchObject({
      schemaVersion: 1,
      tool: { name: 'amr-policy-gate' },
      image: { reference: SAMPLE_IMAGE, digest: SAMPLE_DIGEST },
      gate: 'high',
      verdict: 'fail',
      exitCode: 1,
      counts: { critical: 2, high: 2, medium: 1, low: 0, unknown: 0 },
      uniqueVulnerabilities: 5,
      findings: 5,
      error: null,
    })
    expect(report.blocking[0]).toEqual({
      id: 'CVE-2021-44228',
      severity: 'critical',
      score: 10,
      package: 'org.apache.logging.log4j:log4j-core',
      version: '2.14.1',
      rule: 'severity',
      fix: { state: 'unknown' },
    })
  })

  it('writes a JSON document with the reason when there is no verdict', async () => {
    await serve([answer.raw(401, 'Unauthorized\n')])
    const run = await gate([], { POLICY_FORMAT: 'json' })
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(JSON.parse(run.stdout)).toMatchObject({
      verdict: 'error',
      exitCode: 3,
      counts: null,
      error: { code: 'TOKEN_REJECTED' },
    })
  })

  it('writes Tekton results to --results-dir, and refuses a folder it cannot write', async () => {
    await serve([answer.image(sampleImageBody())])
    const dir = mkdtempSync(join(tmpdir(), 'results-'))
    const run = await gate([], { POLICY_RESULTS_DIR: dir })
    expect(run.code).toBe(EXIT.VIOLATION)
    const read = (name: string) => readFileSync(`${dir}/${name}`, 'utf8')
    expect([read('verdict'), read('critical'), read('high'), read('unknown'), read('blocking')]).toEqual([
      'fail',
      '2',
      '2',
      '0',
      'CVE-2021-44228,CVE-2021-45046,CVE-2023-0464,CVE-2023-0286',
    ])
    const refused = await gate(['--results-dir', `${dir}/missing`])
    expect(refused.code).toBe(EXIT.USAGE)
    expect(refused.stderr).toContain(
      `--results-dir ${dir}/missing is not a writable directory: in a Task use /tekton/results`,
    )
  })

  it('accepts a full https:// URL with a path prefix, the token in ACCESS_TOKEN and the CA as PEM', async () => {
    await serve([answer.image(cleanImageBody())])
    const run = await runGate(['--gate', 'high', '--url', `${fixture.store.url}/`, SAMPLE_DIGEST], {
      env: { ACCESS_TOKEN: TEST_TOKEN, METADATA_STORE_CA_CERT: tls.caCert },
    })
    expect(run.code).toBe(EXIT.PASS)
    expect(fixture.store.requests[0]?.path).toBe(`/api/v1/images/${SAMPLE_DIGEST}`)
  })

  it('goes through HTTPS_PROXY with the store CA, and straight to hosts in NO_PROXY', async () => {
    await serve([answer.image(cleanImageBody())])
    const proxy = await startConnectProxy()
    try {
      const proxied = await gate([], { HTTPS_PROXY: proxy.url })
      expect(proxied.code).toBe(EXIT.PASS)
      expect(proxy.connects).toEqual([fixture.store.hostPort])
      const direct = await gate([], { HTTPS_PROXY: proxy.url, NO_PROXY: 'localhost' })
      expect(direct.code).toBe(EXIT.PASS)
      expect(proxy.connects).toHaveLength(1)
    } finally {
      await proxy.close()
    }
  })

  it('--help lists every option, its environment variable and every exit code', async () => {
    const run = await runGate(['--help'])
    expect(run.code).toBe(EXIT.PASS)
    for (const option of OPTIONS) {
      expect(run.stdout).toContain(option.flag)
      if (option.env) expect(run.stdout).toContain(`[env ${option.env}]`)
      if (option.choices) expect(run.stdout).toContain(option.choices.join(' | '))
    }
    // Wrapped to the width: read it with each run of white space as one space.
    const flowing = run.stdout.replace(/\s+/g, ' ')
    for (const [code, meaning] of EXIT_CODES) expect(flowing).toContain(` ${code} ${meaning}`)
  })

  it('--version prints the package version', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
    const run = await runGate(['--version'])
    expect(run.stdout).toBe(`amr-policy-gate ${version}\n`)
  })
})
