// Unit tests of the pure functions in policy.ts: references, durations, severities, verdicts, counts.
import { describe, expect, it } from 'vitest'
import {
  classifyResponse,
  evaluate,
  formatDuration,
  imageEndpoint,
  isAtOrAbove,
  NoVerdictError,
  normaliseSeverity,
  parseArgs,
  parseDuration,
  parseGate,
  parseImageRef,
  parseRetryAfter,
  parseSize,
  parseStoreUrl,
  redact,
  renderText,
  buildJsonReport,
  tektonResults,
  resolveConfig,
  UsageError,
  OPTIONS,
  isMain,
  type Gate,
} from '../policy.ts'
import { SAMPLE_DIGEST, sampleImageBody } from './support/simulator.ts'

const HEX = 'a'.repeat(64)

describe('parseImageRef', () => {
  it.each([
    ['bare digest', `sha256:${HEX}`],
    ['repository', `app@sha256:${HEX}`],
    ['registry and path', `registry.example.com/tap/app@sha256:${HEX}`],
    ['registry with port and tag', `localhost:5000/team/app:v1.2.3@sha256:${HEX}`],
    ['IPv6 registry', `[::1]:5000/app@sha256:${HEX}`],
    ['surrounding spaces', `  app@sha256:${HEX}\n`],
  ])('accepts a %s', (_name, input) => {
    expect(parseImageRef(input).digest).toBe(`sha256:${HEX}`)
  })

  it('lower-cases the digest', () => {
    expect(parseImageRef(`sha256:${'A'.repeat(64)}`).digest).toBe(`sha256:${HEX}`)
  })

  it.each([
    ['empty', '', /no image given/],
    ['tag only', 'registry.example.com/app:latest', /has no sha256 digest/],
    ['short digest', 'app@sha256:abc', /has no sha256 digest/],
    ['sha512 digest', `app@sha512:${HEX}${HEX}`, /has no sha256 digest/],
    ['uppercase repository', `App@sha256:${HEX}`, /invalid name/],
    ['trailing slash', `registry/@sha256:${HEX}`, /invalid name/],
  ])('refuses %s with a message naming the fix', (_name, input, message) => {
    expect(() => parseImageRef(input)).toThrow(message)
    expect(() => parseImageRef(input)).toThrow(UsageError)
  })
})

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['10s', 10_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['90', 90_000],
    ['1.5', 1_500],
    [' 2s ', 2_000],
  ])('%s is %i ms', (input, ms) => {
    expect(parseDuration(input, '--timeout')).toBe(ms)
  })

  it.each(['', '0', '0s', '-5s', '5 minutes', '5d', 'm', '1h-30m'])('refuses %j naming the option', (input) => {
    expect(() => parseDuration(input, '--timeout')).toThrow(/--timeout/)
  })

  it.each([
    [400, '400ms'],
    [5_000, '5s'],
    [65_000, '1m05s'],
    [3_725_000, '1h02m05s'],
  ])('formats %i ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text)
  })
})

describe('parseGate and parseStoreUrl', () => {
  it.each(['none', 'LOW', ' Medium ', 'high', 'CRITICAL'])('accepts gate %j in any case', (gate) => {
    expect(parseGate(gate)).toBe(gate.trim().toLowerCase())
  })

  it.each(['', 'severe', 'hihg', 'unknown'])('refuses gate %j listing the accepted ones', (gate) => {
    expect(() => parseGate(gate)).toThrow(/use none, low, medium, high or critical/)
  })

  it.each([
    ['metadata-store.example.com', 'https://metadata-store.example.com/api/v1/images/'],
    ['localhost:8443', 'https://localhost:8443/api/v1/images/'],
    ['store.example.com/prefix/', 'https://store.example.com/prefix/api/v1/images/'],
    ['https://store.example.com:8443', 'https://store.example.com:8443/api/v1/images/'],
  ])('reads %s as the seed does (https implied)', (input, endpoint) => {
    expect(imageEndpoint(parseStoreUrl(input), SAMPLE_DIGEST).href).toBe(`${endpoint}${SAMPLE_DIGEST}`)
  })

  it.each([
    ['http://store.example.com', /token would travel in clear/],
    ['ftp://store.example.com', /must use https/],
    ['https://user:secret@store.example.com', /must not hold credentials/],
    ['https://store.example.com/?x=1', /query/],
    ['https://', /not a URL/],
  ])('refuses %s', (input, message) => {
    expect(() => parseStoreUrl(input)).toThrow(message)
  })
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
    const config = resolve([SAMPLE_DIGEST], { GATE: 'High', METADATA_STORE_URL: 'store.example.com', ACCESS_TOKEN: ` ${TOKEN}\n` }, ['/var/cert/caCrt'])
    expect(config.gate).toBe('high')
    expect(config.timeoutMs).toBe(1_800_000)
    expect(config.source).toMatchObject({ store: { token: { value: TOKEN }, ca: { file: '/var/cert/caCrt' }, pollIntervalMs: 5_000, proxied: false } })
  })

  it('lets flags win over the environment, in both --flag value and --flag=value forms', () => {
    const config = resolve(['--gate=low', '--timeout', '10s', '--url', 'a.example.com', SAMPLE_DIGEST], { GATE: 'critical', POLICY_TIMEOUT: '1h', ACCESS_TOKEN: TOKEN })
    expect(config.gate).toBe('low')
    expect(config.timeoutMs).toBe(10_000)
  })

  it('takes the token file named by --token-file before ACCESS_TOKEN', () => {
    const config = resolve(['--gate', 'high', '--url', 'a.example.com', '--token-file', '/t', SAMPLE_DIGEST], { ACCESS_TOKEN: TOKEN })
    expect(config.source).toMatchObject({ store: { token: { file: '/t', origin: '--token-file' } } })
  })

  it('accepts the PEM itself in METADATA_STORE_CA_CERT, as the seed docs put it there', () => {
    const config = resolve([SAMPLE_DIGEST], { GATE: 'high', METADATA_STORE_URL: 'a', ACCESS_TOKEN: TOKEN, METADATA_STORE_CA_CERT: CA })
    expect(config.source).toMatchObject({ store: { ca: { pem: CA, origin: 'METADATA_STORE_CA_CERT' } } })
  })

  it('needs neither store nor token for gate none', () => {
    expect(resolve(['--gate', 'none', SAMPLE_DIGEST])).toEqual({
      image: { reference: SAMPLE_DIGEST, digest: SAMPLE_DIGEST },
      gate: 'none',
      format: 'text',
      mode: 'enforce',
      unknownAs: 'ignore',
      triage: false,
      maxBodyBytes: 24 * 1024 * 1024,
      timeoutMs: 1_800_000,
    })
  })

  it.each([
    ['no gate', [SAMPLE_DIGEST], {}, /no gate given/],
    ['no store', ['--gate', 'high', SAMPLE_DIGEST], {}, /no store given/],
    ['no token', ['--gate', 'high', '--url', 'a', SAMPLE_DIGEST], {}, /no token given: set ACCESS_TOKEN/],
    ['an empty token', ['--gate', 'high', '--url', 'a', SAMPLE_DIGEST], { ACCESS_TOKEN: '  ' }, /ACCESS_TOKEN is empty/],
    ['a token with spaces', ['--gate', 'high', '--url', 'a', SAMPLE_DIGEST], { ACCESS_TOKEN: 'two words of a long token' }, /spaces or non-ASCII/],
    ['a token too short to redact safely', ['--gate', 'high', '--url', 'a', SAMPLE_DIGEST], { ACCESS_TOKEN: 'abc' }, /ACCESS_TOKEN has 3 characters, too short to be a real one/],
    ['an empty --token-file', ['--gate', 'high', '--url', 'a', '--token-file', '', SAMPLE_DIGEST], {}, /--token-file is empty/],
    ['two images', ['--gate', 'high', SAMPLE_DIGEST, SAMPLE_DIGEST], {}, /one image at a time/],
    ['an unknown option', ['--gat', 'high'], {}, /unknown option --gat/],
    ['a --token flag', ['--token', 'abc'], {}, /never from a flag/],
    ['a flag without its value', ['--gate'], {}, /--gate needs a value/],
    ['an unknown format', ['--gate', 'high', '--format', 'xml', SAMPLE_DIGEST], {}, /--format "xml" is not a format/],
    ['TLS verification switched off', ['--gate', 'high', SAMPLE_DIGEST], { NODE_TLS_REJECT_UNAUTHORIZED: '0' }, /NODE_TLS_REJECT_UNAUTHORIZED=0/],
    ['an impossible --newer-than', ['--gate', 'high', '--newer-than', '2026-11-28T25:00:00Z', SAMPLE_DIGEST], {}, /--newer-than "2026-11-28T25:00:00Z" is not a real time/],
    ['HTTPS_PROXY that is not a URL', ['--gate', 'high', '--url', 'a', SAMPLE_DIGEST], { ACCESS_TOKEN: TOKEN, HTTPS_PROXY: 'not a url' }, /HTTPS_PROXY is not a proxy URL/],
    ['a socks proxy', ['--gate', 'high', '--url', 'a', SAMPLE_DIGEST], { ACCESS_TOKEN: TOKEN, https_proxy: 'socks5://127.0.0.1:1080' }, /https_proxy is not a proxy URL/],
    ['a URL whose scheme lost a slash', ['--gate', 'high', '--url', 'http:/host:8443', SAMPLE_DIGEST], { ACCESS_TOKEN: TOKEN }, /--url "http:\/host:8443" has a malformed scheme/],
    ['an empty --report-file', ['--gate', 'high', '--report-file', '', SAMPLE_DIGEST], {}, /--report-file "" is empty/],
    ['a --report-file ending in /', ['--gate', 'high', '--report-file', 'out/', SAMPLE_DIGEST], {}, /--report-file "out\/" is a folder/],
    ['a --report-file that is a folder', ['--gate', 'high', '--report-file', '/reports', SAMPLE_DIGEST], {}, /--report-file "\/reports" is a folder/],
    ['a --report-file in a missing folder', ['--gate', 'high', '--report-file', '/nope/r.json', SAMPLE_DIGEST], {}, /its folder is missing or not writable/],
    ['an empty --results-dir', ['--gate', 'high', '--results-dir', '', SAMPLE_DIGEST], {}, /--results-dir is empty/],
    ['an empty --input', ['--gate', 'high', '--input', '', SAMPLE_DIGEST], {}, /--input is empty/],
  ])('refuses %s with a usage error', (_name, argv, env, message) => {
    expect(() => resolve(argv as string[], env as Record<string, string>)).toThrow(UsageError)
    expect(() => resolve(argv as string[], env as Record<string, string>)).toThrow(message)
  })

  it('checks output paths for every gate, before any request', () => {
    expect(resolve(['--gate', 'high', '--input', 'x.json', '--report-file', '/reports/r.sarif', '--results-dir', '/tekton/results', SAMPLE_DIGEST])).toMatchObject({
      report: { path: '/reports/r.sarif', format: 'sarif' },
      resultsDir: '/tekton/results',
    })
  })

  it.each([['--help'], ['-h'], ['--gate', 'x', '--help'], ['--gat', 'x', '--help'], ['--gate', '--help']])('%s asks for help before anything is checked', (...argv) => {
    expect(parseArgs(argv).kind).toBe('help')
  })

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
      if (option.choices && !option.required && !option.defaultText) expect(option.choices, option.flag).toContain(option.default)
    }
  })
})

describe('parseSize', () => {
  it.each([
    ['1048576', 1_048_576],
    ['512KiB', 524_288],
    ['10MB', 10_000_000],
    ['256MiB', 268_435_456],
    ['1.5 GiB', 1_610_612_736],
  ])('%s is %i bytes', (text, bytes) => expect(parseSize(text)).toBe(bytes))

  it.each(['', '0', '10 parsecs', '-1MB', 'MB'])('refuses %j', (text) => expect(() => parseSize(text)).toThrow(/is not a size/))
})

describe('normaliseSeverity', () => {
  it.each([
    ['Critical', 'critical'],
    ['CRITICAL', 'critical'],
    [' critical ', 'critical'],
    ['High', 'high'],
    ['HIGH', 'high'],
    ['Important', 'high'],
    ['Medium', 'medium'],
    ['moderate', 'medium'],
    ['Low', 'low'],
    ['Negligible', 'unknown'],
    ['Unknown', 'unknown'],
    ['UnknownSeverity', 'unknown'],
    ['none', 'unknown'],
    ['info', 'unknown'],
    ['', 'unknown'],
    [null, 'unknown'],
    [undefined, 'unknown'],
    [7, 'unknown'],
    ['Highest', 'unknown'],
  ])('%j is %s', (raw, severity) => {
    expect(normaliseSeverity(raw)).toBe(severity)
  })

  it('never lets unknown reach a gate, and gate none never fails', () => {
    for (const gate of ['low', 'medium', 'high', 'critical'] as const) expect(isAtOrAbove('unknown', gate)).toBe(false)
    for (const severity of ['critical', 'high', 'medium', 'low', 'unknown'] as const) expect(isAtOrAbove(severity, 'none')).toBe(false)
  })
})

const rating = (Severity: unknown, Score: unknown = 0) => ({ Severity, Score })
const vuln = (CVEID: string, ...Ratings: unknown[]) => ({ CVEID, Ratings })
const pkg = (Name: string, Version: string, ...Vulnerabilities: unknown[]) => ({ Name, Version, Vulnerabilities })
const image = (...Packages: unknown[]) => ({ Digest: SAMPLE_DIGEST, Packages })

describe('evaluate', () => {
  it('counts the reference sample by highest rating, as the API notes work out', () => {
    const result = evaluate(sampleImageBody(), 'high', SAMPLE_DIGEST)
    expect(result.counts).toEqual({ critical: 2, high: 2, medium: 1, low: 0, unknown: 0 })
    expect(result).toMatchObject({ uniqueVulnerabilities: 5, findings: 5, passed: false })
    expect(result.blocking.map((finding) => `${finding.id} ${finding.severity} ${finding.score}`)).toEqual([
      'CVE-2021-44228 critical 10',
      'CVE-2021-45046 critical 9',
      'CVE-2023-0464 high 7.5',
      'CVE-2023-0286 high 7.4',
    ])
  })

  it.each<[Gate, boolean, number]>([
    ['none', true, 0],
    ['critical', false, 2],
    ['high', false, 4],
    ['medium', false, 5],
    ['low', false, 5],
  ])('the sample against gate %s passes: %s, with %i blocking', (gate, passed, blocking) => {
    const result = evaluate(sampleImageBody(), gate)
    expect(result.passed).toBe(passed)
    expect(result.blocking).toHaveLength(blocking)
  })

  it.each([
    ['Packages null', { Digest: SAMPLE_DIGEST, Packages: null }],
    ['Packages missing', { Digest: SAMPLE_DIGEST }],
    ['Packages empty', image()],
    ['Vulnerabilities null', image({ Name: 'a', Vulnerabilities: null })],
    ['Vulnerabilities missing', image({ Name: 'a' })],
  ])('%s means no vulnerabilities', (_name, document) => {
    expect(evaluate(document, 'low')).toMatchObject({ counts: { critical: 0, high: 0, medium: 0, low: 0, unknown: 0 }, findings: 0, passed: true })
  })

  it.each([
    ['Ratings null', { CVEID: 'CVE-1', Ratings: null }],
    ['Ratings missing', { CVEID: 'CVE-1' }],
    ['Ratings empty', vuln('CVE-1')],
    ['Severity null', vuln('CVE-1', rating(null, 9.8))],
    ['Severity missing', vuln('CVE-1', { Score: 9.8 })],
    ['Severity negligible', vuln('CVE-1', rating('Negligible'))],
    ['Severity UnknownSeverity', vuln('CVE-1', rating('UnknownSeverity'))],
  ])('%s counts as unknown, which no gate fails on', (_name, vulnerability) => {
    const result = evaluate(image(pkg('a', '1', vulnerability)), 'low')
    expect(result).toMatchObject({ counts: { unknown: 1 }, findings: 1, passed: true })
  })

  it('takes the highest rating, so a CVE rated High and Critical is critical and counted once', () => {
    const result = evaluate(image(pkg('a', '1', vuln('CVE-1', rating('High', 7.5), rating('CRITICAL', 9.1), rating('low')))), 'critical')
    expect(result.counts).toEqual({ critical: 1, high: 0, medium: 0, low: 0, unknown: 0 })
    expect(result.blocking).toEqual([{ id: 'CVE-1', severity: 'critical', score: 9.1, package: 'a', version: '1', rule: 'severity' }])
  })

  it('counts a CVE found in two packages once, by its worst rating, and lists both findings', () => {
    const result = evaluate(image(pkg('a', '1', vuln('CVE-1', rating('medium'))), pkg('b', '2', vuln('CVE-1', rating('high')))), 'medium')
    expect(result).toMatchObject({ uniqueVulnerabilities: 1, findings: 2, counts: { high: 1, medium: 0 } })
    expect(result.blocking.map((finding) => `${finding.package} ${finding.severity}`)).toEqual(['b high', 'a medium'])
  })

  it('finds lowercase and padded severities that the seed misses', () => {
    expect(evaluate(image(pkg('a', '1', vuln('CVE-1', rating(' critical ')))), 'critical').passed).toBe(false)
    expect(evaluate(image(pkg('a', '1', vuln('CVE-1', rating('HIGH')))), 'high').passed).toBe(false)
  })

  it('names vulnerabilities without a CVEID by their store ID', () => {
    const result = evaluate(image(pkg('a', '1', { ID: 5501, Ratings: [rating('High')] })), 'high')
    expect(result.blocking[0]?.id).toBe('store-id:5501')
  })

  it.each([
    ['a list', [], /the document is a list, expected an object/],
    ['a string', 'x', /the document is a string/],
    ['null', null, /the document is null/],
    ['an error body', { message: 'image not found' }, /neither Digest nor Packages/],
    ['Packages as an object', { Digest: SAMPLE_DIGEST, Packages: {} }, /Packages is an object, expected a list/],
    ['a package that is a number', image(7), /Packages\[0\] is a number/],
    ['Vulnerabilities as a string', image({ Vulnerabilities: 'x' }), /Packages\[0\]\.Vulnerabilities is a string/],
    ['a rating that is null', image(pkg('a', '1', { CVEID: 'x', Ratings: [null] })), /Packages\[0\]\.Vulnerabilities\[0\]\.Ratings\[0\] is null/],
  ])('refuses %s as malformed (no verdict)', (_name, document, message) => {
    expect(() => evaluate(document, 'high')).toThrow(NoVerdictError)
    expect(() => evaluate(document, 'high')).toThrow(message)
  })

  it('refuses a report for another digest', () => {
    expect(() => evaluate({ Digest: `sha256:${HEX}`, Packages: [] }, 'high', SAMPLE_DIGEST)).toThrow(/describes sha256:a{64}, not sha256:a24a/)
  })
})

describe('classifyResponse', () => {
  const response = (status: number, body = '', headers: Record<string, string> = {}) => classifyResponse({ status, headers, body }, Date.parse('2026-01-01T00:00:00Z'))

  it.each([
    [404, 'retry'],
    [429, 'retry'],
    [500, 'retry'],
    [503, 'retry'],
    [401, 'fail'],
    [403, 'fail'],
    [400, 'fail'],
    [302, 'fail'],
  ])('%i means %s', (status, kind) => {
    expect(response(status).kind).toBe(kind)
  })

  it('honours Retry-After in seconds and as an HTTP date', () => {
    expect(response(503, '', { 'retry-after': '7' })).toMatchObject({ kind: 'retry', delayMs: 7_000 })
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', Date.parse('2026-01-01T00:00:00Z'))).toBe(30_000)
    expect(parseRetryAfter('soon', 0)).toBeUndefined()
  })

  it('ends at once on a 200 that is not JSON', () => {
    expect(response(200, '<html>')).toMatchObject({ kind: 'fail', error: { code: 'MALFORMED_RESPONSE' } })
  })
})

describe('tektonResults', () => {
  it('lists at most ten blocking IDs, once each, and says how many more', () => {
    const many = image(...Array.from({ length: 12 }, (_, i) => pkg(`p${i}`, '1', vuln(`CVE-${i}`, rating('High')), vuln(`CVE-${i}`, rating('High')))))
    const evaluation = evaluate(many, 'high')
    const results = tektonResults(buildJsonReport({ image: null, gate: 'high' }, { evaluation }))
    expect(results.blocking).toBe('CVE-0,CVE-1,CVE-10,CVE-11,CVE-2,CVE-3,CVE-4,CVE-5,CVE-6,CVE-7 (+2 more)')
    expect(results).toMatchObject({ verdict: 'fail', high: '12', critical: '0' })
  })
})

describe('renderText and redact', () => {
  it('says so plainly when an image has no vulnerabilities', () => {
    const text = renderText(evaluate(image(), 'high'), { reference: SAMPLE_DIGEST, digest: SAMPLE_DIGEST }, { color: false })
    expect(text).toContain('No vulnerabilities reported for this image.')
    expect(text).toContain('PASS: nothing blocks at gate high.')
  })

  it('caps the listed findings and says how many more there are', () => {
    const many = image(pkg('a', '1', ...Array.from({ length: 25 }, (_, i) => vuln(`CVE-2026-${1000 + i}`, rating('High', 7)))))
    const text = renderText(evaluate(many, 'high'), { reference: SAMPLE_DIGEST, digest: SAMPLE_DIGEST }, { color: false })
    expect(text).toContain('... and 5 more (--format json lists up to 5000)')
    expect(text).toContain('FAIL: 25 vulnerabilities (25 findings) block at gate high.')
  })

  it('colours only when asked', () => {
    const ref = { reference: SAMPLE_DIGEST, digest: SAMPLE_DIGEST }
    expect(renderText(evaluate(sampleImageBody(), 'high'), ref, { color: true })).toContain('\x1b[31m')
    expect(renderText(evaluate(sampleImageBody(), 'high'), ref, { color: false })).not.toContain('\x1b[')
  })

  it('replaces every occurrence of a secret', () => {
    expect(redact('a tok b tok', ['tok'])).toBe('a [redacted] b [redacted]')
    expect(redact('unchanged', [''])).toBe('unchanged')
  })
})

describe('isMain', () => {
  const links = (path: string) => (path === '/usr/local/bin/gate' ? '/app/policy.mjs' : path)
  it.each([
    ['the bundle itself', '/app/policy.mjs', true],
    ['a link to it', '/usr/local/bin/gate', true],
    ['another script that imports it', '/app/test.mjs', false],
    ['no script (node -e)', undefined, false],
  ] as const)('for %s (%s): %s', (_name, script, expected) => {
    expect(isMain('file:///app/policy.mjs', script, links)).toBe(expected)
  })

  it('is false when the script cannot be resolved', () => {
    expect(isMain('file:///app/policy.mjs', '/gone', () => { throw Object.assign(new Error('gone'), { code: 'ENOENT' }) })).toBe(false)
  })
})
