// The built gate against input written to break it: store bodies that forge a PASS line, configuration that
// would once end in a stack trace or a 20-minute wait, results that cannot be written, a reader that hangs up,
// bodies that multiply into huge reports, and bodies built to exhaust memory.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { EXIT } from '../../gate/vocabulary.ts'
import { useStoreFixture } from '../support/fixture.ts'
import { BUNDLE, cleanEnv, runGate, writeFiles, type GateRun } from '../support/gate.ts'
import { image, pkg, rating, SAMPLE_DIGEST, sampleImageBody, vuln } from '../support/documents.ts'
import { answer, TEST_TOKEN } from '../support/simulator.ts'

const fixture = useStoreFixture()
const { serve, gate } = fixture
const FORGED_PASS = 'x\r\x1b[2K\x1b[32mPASS: nothing blocks at gate high.\x1b[8m'
/** What a terminal would act on; the text summary and stderr may hold none of it raw. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/

/** The sample's log4j finding in one package of the given name and version. */
const withPackage = (name: string, version = '1.0', severity = 'Critical') =>
  image(pkg(name, version, vuln('CVE-2021-44228', rating(severity, 10))))

function expectOneLineUsageError(run: GateRun, message: string | RegExp): void {
  expect(run.code).toBe(EXIT.USAGE)
  const lines = run.stderr.trimEnd().split('\n')
  expect(lines).toHaveLength(2)
  expect(lines[0]).toMatch(message)
  expect(lines[1]).toBe('amr-policy-gate: run with --help for usage')
  expect(run.stdout).toBe('')
}

describe('data from the store cannot forge output', () => {
  it('shows a package name that paints a green PASS as escaped text, and the FAIL line stays last', async () => {
    await serve([answer.image(withPackage(FORGED_PASS))])
    const run = await gate([])
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(run.stdout).not.toMatch(RAW_CONTROL)
    expect(run.stdout).toContain('x\\x0d\\x1b[2K\\x1b[32mPASS: nothing blocks')
    const lines = run.stdout.trimEnd().split('\n')
    expect(lines.at(-1)).toMatch(/^FAIL: 1 vulnerability \(1 finding\) blocks at gate high\./)
    expect(lines.filter((line) => /^(PASS|FAIL)/.test(line))).toHaveLength(1)
  })

  it('quotes an error body with control characters as one escaped line on stderr', async () => {
    await serve([answer.raw(403, `Forbidden\x1b]0;pwned\x07\r\nPASS: nothing blocks at gate high.`)])
    const run = await gate([])
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.stderr).not.toMatch(RAW_CONTROL)
    expect(run.stderr).toContain('403 Forbidden: Forbidden\\x1b]0;pwned\\x07')
    for (const line of run.stderr.trimEnd().split('\n')) expect(line).toMatch(/^amr-policy-gate: /)
  })

  it.each([
    ['no Digest', { Packages: [] }, /Digest is missing/],
    ['a numeric Digest', { Digest: 42, Packages: [] }, /Digest is a number, expected the image's digest/],
  ])('exits 3 on a body for the digest with %s, naming the field', async (_name, body, message) => {
    await serve([answer.image(body)])
    const run = await gate([])
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.stderr).toMatch(message)
  })

  it('takes the last of duplicate keys, as JSON.parse does (documented)', async () => {
    await serve([
      answer.raw(
        200,
        `{"Digest":"${SAMPLE_DIGEST}","Packages":${JSON.stringify(withPackage('openssl').Packages)},"Packages":[]}`,
        { 'content-type': 'application/json' },
      ),
    ])
    const run = await gate([])
    expect(run.code).toBe(EXIT.PASS)
  })
})

describe('bad configuration is a usage error, found before any request', () => {
  const yamlBomb = [
    'a: &a ["x","x","x","x","x","x","x","x","x","x"]',
    ...Array.from(
      { length: 8 },
      (_, i) =>
        `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} ` +
        `[*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`,
    ),
    'exemptions: *i',
    '',
  ].join('\n')
  const files = () =>
    writeFiles({
      'bomb.yaml': yamlBomb,
      'huge.yaml': `exemptions:\n${'  - {id: CVE-1, reason: r, expires: 2099-01-01}\n'.repeat(30_000)}`,
      'impossible.yaml':
        'exemptions:\n  - id: CVE-2021-44228\n    reason: accepted\n    expires: 2027-02-30T12:00:00Z\n',
      'typo.yaml':
        'exemptions:\n  - id: CVE-2021-44228\n    reason: accepted\n    expires: 2099-01-01\n    package: {name: ' +
        'log4j-core, versions: 2.14.1}\n',
    })

  it.each([
    [
      'a YAML alias bomb',
      (f: Record<string, string>) => ['--exemptions', f['bomb.yaml']!],
      {},
      /bomb\.yaml: cannot be read as exemptions \(Excessive alias count/,
    ],
    [
      'an exemptions file over 1 MiB',
      (f: Record<string, string>) => ['--exemptions', f['huge.yaml']!],
      {},
      /--exemptions is larger than 1024 KiB/,
    ],
    [
      'an exemption that expires on February 30',
      (f: Record<string, string>) => ['--exemptions', f['impossible.yaml']!],
      {},
      /entry 1 \(CVE-2021-44228\): "expires" "2027-02-30T12:00:00Z" is not a real date/,
    ],
    [
      'versions: for version: in an exemption',
      (f: Record<string, string>) => ['--exemptions', f['typo.yaml']!],
      {},
      /"package\.versions" is not a field/,
    ],
    [
      '--newer-than at hour 25',
      () => ['--newer-than', '2026-11-28T25:00:00Z'],
      {},
      /--newer-than "2026-11-28T25:00:00Z" is not a real time/,
    ],
    ['HTTPS_PROXY that is not a URL', () => [], { HTTPS_PROXY: 'not a url' }, /HTTPS_PROXY is not a proxy URL/],
    [
      '--url http:/host:8443',
      () => ['--url', 'http:/host:8443'],
      {},
      /--url "http:\/host:8443" has a malformed scheme/,
    ],
    ['--report-file naming a folder', () => ['--report-file', tmpdir()], {}, /--report-file ".*" is a folder/],
    ['--report-file ending in /', () => ['--report-file', 'reports/'], {}, /--report-file "reports\/" is a folder/],
    ['an empty --report-file', () => ['--report-file', ''], {}, /--report-file "" is empty/],
    ['an empty --results-dir', () => ['--results-dir', ''], {}, /--results-dir is empty/],
    [
      'a token too short to keep out of the output',
      () => [],
      { ACCESS_TOKEN_FILE: '', ACCESS_TOKEN: 'abc' },
      /ACCESS_TOKEN has 3 characters, too short to be a real one/,
    ],
  ])('exits 2 on %s with one line and no request', async (_name, args, env, message) => {
    await serve([answer.image(sampleImageBody())])
    const run = await gate(args(files()), env)
    expectOneLineUsageError(run, message)
    expect(fixture.store.requests).toHaveLength(0)
  })

  it('does not echo a --token-file value that is not a file: it may be the token itself', async () => {
    await serve([answer.image(sampleImageBody())])
    const run = await gate(['--token-file', 'eyJhbGciOiJSUzI1NiJ9.pasted-by-mistake'])
    expectOneLineUsageError(run, /cannot read the token file named by --token-file \(ENOENT\)/)
    expect(run.stderr).not.toContain('pasted-by-mistake')
  })
})

describe('one verdict, one exit code', () => {
  it('exits 3 when the Tekton results cannot be written, still shows the verdict, and leaves no stale verdict', async () => {
    await serve([answer.image(sampleImageBody())])
    const dir = mkdtempSync(join(tmpdir(), 'results-'))
    writeFileSync(join(dir, 'verdict'), 'pass')
    mkdirSync(join(dir, 'blocking')) // renaming the result onto a folder fails
    const run = await gate(['--format', 'json', '--results-dir', dir])
    expect(run.code).toBe(EXIT.NO_VERDICT)
    const report = JSON.parse(run.stdout)
    expect(report).toMatchObject({ verdict: 'fail', exitCode: EXIT.NO_VERDICT, error: { code: 'RESULTS_NOT_WRITTEN' } })
    expect(report.blocking.length).toBeGreaterThan(0)
    expect(run.stderr).toContain('no verdict: the verdict could not be recorded: cannot write the results to')
    expect(existsSync(join(dir, 'verdict'))).toBe(false)
    expect(existsSync(join(dir, 'critical'))).toBe(false) // all or nothing
  })

  it('writes results and report atomically: no temporary file is left beside them', async () => {
    await serve([answer.image(sampleImageBody())])
    const dir = mkdtempSync(join(tmpdir(), 'results-'))
    const run = await gate(['--results-dir', dir, '--report-file', join(dir, 'report.json')])
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(readFileSync(join(dir, 'verdict'), 'utf8')).toBe('fail')
    expect(JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'))).toMatchObject({ verdict: 'fail', exitCode: 1 })
    expect(readFileSync(join(dir, 'verdict'), 'utf8')).toBe('fail')
    expect(readdirSync(dir).filter((name) => name.endsWith('.tmp'))).toEqual([])
  })

  it('keeps the verdict and its exit code when only the report cannot be written, with a warning', async () => {
    await serve([answer.image(sampleImageBody())])
    const dir = mkdtempSync(join(tmpdir(), 'report-'))
    const run = await gate([
      '--format',
      'json',
      '--results-dir',
      dir,
      '--report-file',
      join(dir, `${'r'.repeat(300)}.json`),
    ]) // ENAMETOOLONG
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(JSON.parse(run.stdout)).toMatchObject({ verdict: 'fail', exitCode: EXIT.VIOLATION, error: null })
    expect(readFileSync(join(dir, 'verdict'), 'utf8')).toBe('fail')
    expect(run.stderr).toMatch(/warning: cannot write the report .* \(ENAMETOOLONG\); the verdict stands/)
  })

  it('exits with the verdict when the reader closes stdout early (| head)', async () => {
    await serve([answer.image(sampleImageBody())])
    const input = writeFiles({
      'r.json': JSON.stringify({
        ...sampleImageBody(),
        Packages: Array.from({ length: 2_000 }, (_, i) => withPackage(`p${i}`).Packages[0]),
      }),
    })['r.json']!
    const child = spawn(
      process.execPath,
      [BUNDLE, '--gate', 'high', '--format', 'json', '--input', input, SAMPLE_DIGEST],
      { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
    )
    child.stdout.destroy() // the reader is gone before the first byte
    let stderr = ''
    child.stderr.on('data', (chunk) => (stderr += chunk))
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    expect(code).toBe(EXIT.VIOLATION)
    expect(stderr).not.toMatch(/EPIPE|\n\s+at /)
  })
})

describe('output is bounded by what a reader can use', () => {
  it('keeps a report proportional to its input when one long name is shared by many findings', async () => {
    const body = {
      Digest: SAMPLE_DIGEST,
      Packages: [
        {
          Name: 'n'.repeat(500_000),
          Version: '1',
          Vulnerabilities: Array.from({ length: 2_000 }, (_, i) => ({
            CVEID: `CVE-2026-${i}`,
            Ratings: [{ Severity: 'Critical' }],
          })),
        },
      ],
    }
    const input = JSON.stringify(body)
    const files = writeFiles({ 'in.json': input })
    const dir = mkdtempSync(join(tmpdir(), 'reports-'))
    for (const format of ['json', 'sarif', 'junit']) {
      const run = await runGate([
        '--gate',
        'high',
        '--format',
        'json',
        '--input',
        files['in.json']!,
        '--report-file',
        join(dir, `r.${format}`),
        '--report-format',
        format,
        SAMPLE_DIGEST,
      ])
      expect(run.code).toBe(EXIT.VIOLATION)
      // Linear in the input (each finding carries its package name, cut to 256 characters), never its square.
      expect(run.stdout.length).toBeLessThan(10 * input.length)
      expect(statSync(join(dir, `r.${format}`)).size).toBeLessThan(10 * input.length)
    }
  })
})

describe('memory', () => {
  /** `{"Packages":[{},{},...]}`: three bytes of text, dozens of bytes of heap each. */
  const emptyObjects = (megabytes: number) =>
    `{"Digest":"${SAMPLE_DIGEST}","Packages":[${'{},'.repeat((megabytes * 2 ** 20) / 3)}{}]}`

  it('refuses a body built to exhaust the heap with exit 3 BODY_TOO_LARGE, where JSON.parse alone would abort', async () => {
    const files = writeFiles({ 'bomb.json': emptyObjects(40) })
    const heap = '--max-old-space-size=64' // Node rounds this up to a 256 MiB heap
    const plainParse = spawnSync(
      process.execPath,
      [heap, '-e', 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))', files['bomb.json']!],
      { env: cleanEnv() },
    )
    expect(plainParse.signal ?? plainParse.status, 'the body really exhausts this heap').toBe('SIGABRT')
    const run = await runGate(
      ['--gate', 'high', '--format', 'json', '--max-body-size', '1GiB', '--input', files['bomb.json']!, SAMPLE_DIGEST],
      { nodeArgs: [heap] },
    )
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(JSON.parse(run.stdout).error).toMatchObject({ code: 'BODY_TOO_LARGE' })
    expect(run.stderr).toMatch(
      /--input .*bomb\.json \(4\d MiB\) needs about \d+ MiB to evaluate, more than the \d+ MiB this process may still use/,
    )
  })

  it('evaluates a real report of the same size under the same heap', async () => {
    const pkg = sampleImageBody().Packages as unknown[]
    const packages = Array.from({ length: Math.ceil((12 * 2 ** 20) / JSON.stringify(pkg).length) }, () => pkg).flat()
    const files = writeFiles({ 'real.json': JSON.stringify({ ...sampleImageBody(), Packages: packages }) })
    const run = await runGate(['--gate', 'high', '--input', files['real.json']!, SAMPLE_DIGEST], {
      nodeArgs: ['--max-old-space-size=64'],
    })
    expect(run.code).toBe(EXIT.VIOLATION)
  })
})

describe('the token in every output', () => {
  it('is redacted from an error body that echoes the Authorization header, in the JSON report too', async () => {
    await serve([answer.raw(401, `denied: Authorization: Bearer ${TEST_TOKEN}`)])
    const dir = mkdtempSync(join(tmpdir(), 'report-'))
    const run = await gate(['--format', 'json', '--report-file', join(dir, 'r.xml')])
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(readFileSync(join(dir, 'r.xml'), 'utf8')).not.toContain(TEST_TOKEN.slice(0, 12))
    expect(run.stdout).not.toContain(TEST_TOKEN.slice(0, 12))
  })
})
