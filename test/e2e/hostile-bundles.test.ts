// Hostile and unusual scan results, served by a real registry (Debian's docker-registry): files the gate cannot
// read beside clean ones, indexes of several images, tar headers that lie about sizes. Every case ends in a
// verdict over everything the bundle holds, or in no verdict (exit 3) naming what could not be read; never in
// a pass over part of it.
import { readFileSync } from 'node:fs'
import { http, HttpResponse } from 'msw'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { classifyScanFile, filesOfTar, tarSize } from '../../gate/registry.ts'
import { redactReport, redactSummary } from '../../gate/safe-text.ts'
import { EXIT } from '../../gate/vocabulary.ts'
import { cycloneDxOf, SAMPLE_DIGEST, SAMPLE_IMAGE } from '../support/documents.ts'
import { runGate, writeFiles } from '../support/gate.ts'
import {
  missingRegistryTools,
  REGISTRY_PASSWORD,
  REGISTRY_USER,
  startRegistry,
  ustarHeader,
  type Registry,
} from '../support/registry.ts'
import { makeTls, startSimulator, type Simulator } from '../support/simulator.ts'

const missing = await missingRegistryTools()
const TRIVY = readFileSync(new URL('../fixtures/cyclonedx/trivy-fluentd.cdx.json', import.meta.url), 'utf8')
const CLEAN = cycloneDxOf(SAMPLE_DIGEST, 'low')
const CRITICAL = cycloneDxOf(SAMPLE_DIGEST, 'critical')

/** A one-file tar whose header's size field is `size` as written (a valid checksum, so only the size lies). */
const tarWithSize = (size: string | Buffer, content = Buffer.alloc(1024, 'x')): Buffer =>
  Buffer.concat([ustarHeader('scan.cdx.json', size), content, Buffer.alloc(1024)])

describe('tar sizes and bundle files, pure', () => {
  it.each([
    ['octal', '00000001750\0', 1000],
    ['octal with spaces', ' 1750 ', 1000],
    ['empty', '\0', 0],
    ['base-256', Buffer.from([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03, 0xe8]), 1000],
    ['negative', '-1000', undefined],
    [
      'negative base-256',
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfc, 0x18]),
      undefined,
    ],
    ['not octal', '00000009999\0', undefined],
    ['hex', '0x3e8', undefined],
  ])('reads a %s size field', (_name, field, size) => {
    const buffer = Buffer.alloc(12)
    ;(typeof field === 'string' ? Buffer.from(field, 'latin1') : field).copy(buffer)
    expect(tarSize(buffer)).toBe(size)
  })

  it('refuses a negative or oversized size instead of looping or reading past the end', () => {
    expect(() => filesOfTar(tarWithSize('-1000'), 'layer x')).toThrow(/the size at byte 124 is no non-negative number/)
    expect(() => filesOfTar(tarWithSize('77777777777'), 'layer x')).toThrow(/truncated tar archive/)
    expect(filesOfTar(tarWithSize('2000'), 'layer x').map((file) => [file.name, file.content.length])).toEqual([
      ['scan.cdx.json', 0o2000],
    ])
  })

  const file = (name: string, content: string | Buffer) => ({ name, content: Buffer.from(content) })
  it.each([
    ['a CycloneDX file', file('scan.cdx.json', CLEAN), 'bom'],
    ['a CycloneDX file with a byte order mark', file('scan.cdx.json', `\ufeff${CLEAN}`), 'bom'],
    ['imgpkg metadata', file('.imgpkg/images.yml', 'kind: ImagesLock'), "imgpkg's bundle metadata"],
    ['an SPDX JSON SBOM', file('scan.spdx.json', '{"spdxVersion":"SPDX-2.3","packages":[]}'), 'an SPDX SBOM'],
    [
      'an SPDX tag-value SBOM',
      file('scan.spdx', 'SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\n'),
      'an SPDX SBOM (tag-value)',
    ],
    ['XML named .xml', file('scan.xml', '<?xml version="1.0"?><bom/>'), 'XML, which the gate does not read'],
  ])('takes %s for what it is', (_name, bundleFile, expected) => {
    const kind = classifyScanFile(bundleFile, bundleFile.name, 2 ** 30)
    if (expected === 'bom') expect(kind).toHaveProperty('bom')
    else expect((kind as { setAside: string }).setAside).toContain(expected)
  })

  it.each([
    ['truncated JSON', file('scan.cdx.json', CLEAN.slice(0, 100)), /is not JSON \(.*\), perhaps truncated/],
    [
      'a CycloneDX version not read',
      file('scan.cdx.json', JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.8', vulnerabilities: [] })),
      /is CycloneDX of specVersion "1.8"; the gate reads 1.4 to 1.7/,
    ],
    [
      'JSON of another kind',
      file('scan.json', '{"vulnerabilities":[{"id":"SNYK-1"}]}'),
      /is JSON, but neither CycloneDX nor SPDX/,
    ],
    ['a text file', file('notes.txt', 'hello'), /is neither CycloneDX JSON nor SPDX nor XML/],
    ['XML not named .xml', file('scan.cdx', '<bom/>'), /is XML not named \.xml/],
    ['a .json file that is not JSON', file('scan.cdx.json', 'hello'), /\(named \.json, but not JSON\)/],
  ])('ends the run on %s, naming the file', (_name, bundleFile, message) => {
    expect(() => classifyScanFile(bundleFile, `${bundleFile.name} in r`, 2 ** 30)).toThrow(message)
  })
})

describe.skipIf(missing.length > 0)('hostile scan results from a real registry', () => {
  let registry: Registry
  let files: Record<string, string>
  const gate = (args: string[], env: Record<string, string> = {}) =>
    runGate(args, {
      env: {
        GATE: 'high',
        POLICY_REGISTRY_CONFIG: files['config.json']!,
        POLICY_REGISTRY_CA_CERT: files['ca.crt']!,
        POLICY_POLL_INTERVAL: '100ms',
        ...env,
      },
    })
  const ref = (repository: string, digest: string) => `${registry.host}/${repository}@${digest}`

  beforeAll(async () => {
    registry = await startRegistry('basic')
    files = writeFiles({
      'config.json': JSON.stringify({
        auths: { [registry.host]: { auth: Buffer.from(`${REGISTRY_USER}:${REGISTRY_PASSWORD}`).toString('base64') } },
      }),
      'ca.crt': registry.tls.caCert,
    })
  }, 60_000)
  afterAll(async () => {
    await registry?.close()
  })

  it.each([
    ['a truncated file', 'truncated.cdx.json', CRITICAL.slice(0, 120), 'truncated.cdx.json in'],
    [
      'a CycloneDX 1.8 file',
      'next.cdx.json',
      JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.8', vulnerabilities: [{ id: 'CVE-2099-1' }] }),
      'is CycloneDX of specVersion "1.8"',
    ],
    [
      'an unknown JSON file',
      'scan.json',
      '{"vulnerabilities":[{"id":"SNYK-JS-1","severity":"critical"}]}',
      'is JSON, but neither CycloneDX nor SPDX',
    ],
  ])(
    'gives no verdict when %s stands beside a clean one (it passed before)',
    async (_name, fileName, content, message) => {
      const { digest } = await registry.push('project/partial-scan-results', fileName, {
        layers: [{ files: { 'clean.cdx.json': CLEAN, [fileName]: content } }],
      })
      const run = await gate([
        '--scan-result',
        ref('project/partial-scan-results', digest),
        '--format',
        'json',
        SAMPLE_IMAGE,
      ])
      expect(run.code, run.stderr).toBe(EXIT.NO_VERDICT)
      expect(run.stderr).toContain(message)
      expect(JSON.parse(run.stdout)).toMatchObject({ verdict: 'error', error: { code: 'MALFORMED_RESPONSE' } })
    },
  )

  it('reads a file with a byte order mark like any other: its critical finding blocks', async () => {
    const { digest } = await registry.push('project/bom-scan-results', 'uid-1', {
      layers: [
        {
          files: {
            'clean.cdx.json': CLEAN,
            'windows.cdx.json': `\ufeff${CRITICAL.replace('CVE-2024-9999', 'CVE-2024-8888')}`,
          },
        },
      ],
    })
    const run = await gate(['--scan-result', ref('project/bom-scan-results', digest), SAMPLE_IMAGE])
    expect(run.code, run.stderr).toBe(EXIT.VIOLATION)
    expect(run.stdout).toContain('CVE-2024-8888')
  })

  it('lists what it set aside and why: an SPDX SBOM, XML, imgpkg metadata', async () => {
    const { digest } = await registry.push('project/aside-scan-results', 'uid-1', {
      layers: [
        {
          files: {
            'scan.cdx.json': CLEAN,
            'scan.spdx.json': '{"spdxVersion":"SPDX-2.3"}',
            'scan.xml': '<bom/>',
            '.imgpkg/images.yml': 'kind: ImagesLock\n',
          },
        },
      ],
    })
    const text = await gate(['--scan-result', ref('project/aside-scan-results', digest), SAMPLE_IMAGE])
    expect(text.code, text.stderr).toBe(EXIT.PASS)
    expect(text.stdout).toMatch(
      /Set aside, no vulnerabilities to judge:\n(?:.*\n)*  scan\.spdx\.json  an SPDX SBOM: packages, no vulnerabilities/,
    )
    const json = JSON.parse(
      (await gate(['--scan-result', ref('project/aside-scan-results', digest), '--format', 'json', SAMPLE_IMAGE]))
        .stdout,
    )
    expect(json.setAside.map((aside: { what: string }) => aside.what).sort()).toEqual([
      '.imgpkg/images.yml',
      'scan.spdx.json',
      'scan.xml',
    ])
  })

  it('judges every image of an index together: a clean amd64 and a critical arm64 fail (the arm64 one was never read)', async () => {
    const { digest } = await registry.pushIndex('project/multi-arch-scan-results', 'uid-1', [
      { os: 'linux', architecture: 'amd64', layers: [{ files: { 'scan.cdx.json': CLEAN } }] },
      { os: 'linux', architecture: 'arm64', layers: [{ files: { 'scan.cdx.json': CRITICAL } }] },
      {
        os: 'unknown',
        architecture: 'unknown',
        layers: [{ files: { 'sbom.spdx.json': '{"spdxVersion":"SPDX-2.3"}' } }],
      },
    ])
    const run = await gate([
      '--scan-result',
      ref('project/multi-arch-scan-results', digest),
      '--format',
      'json',
      SAMPLE_IMAGE,
    ])
    expect(run.code, run.stderr).toBe(EXIT.VIOLATION)
    expect(run.stderr).toContain('evaluating linux/amd64: scan.cdx.json, linux/arm64: scan.cdx.json')
    const report = JSON.parse(run.stdout)
    expect(report.blocking).toEqual([expect.objectContaining({ id: 'CVE-2024-9999', severity: 'critical' })])
    expect(report.findings).toBe(2)
    expect(report.setAside).toEqual([
      expect.objectContaining({
        what: expect.stringMatching(/^manifest sha256:/),
        reason: expect.stringContaining('attestation'),
      }),
    ])
  })

  it.each([
    ['a negative size', '-1000'],
    ['a size past the end', '77777777777'],
    ['a negative base-256 size', Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfc, 0x18])],
  ])('ends a tar layer with %s in its header with no verdict, well within --timeout', async (_name, size) => {
    const { digest } = await registry.push('project/tar-scan-results', `size-${Buffer.from(size).toString('hex')}`, {
      layers: [{ raw: tarWithSize(size), mediaType: 'application/vnd.oci.image.layer.v1.tar', title: 'layer.tar' }],
    })
    const run = await gate(['--scan-result', ref('project/tar-scan-results', digest), '--timeout', '20s', SAMPLE_IMAGE])
    expect(run.code, run.stderr).toBe(EXIT.NO_VERDICT)
    expect(run.stderr).toMatch(
      /is not a tar archive \(the size at byte 124 is no non-negative number\)|is a truncated tar archive/,
    )
    expect(run.ms).toBeLessThan(20_000)
  })

  it('with a one-letter password the real registry refuses, no output is rewritten by redaction', async () => {
    const { digest } = await registry.push('project/short-password', 'uid-1', {
      layers: [{ files: { 'scan.cdx.json': CLEAN } }],
    })
    const short = writeFiles({
      'config.json': JSON.stringify({
        auths: { [registry.host]: { auth: Buffer.from(`${REGISTRY_USER}:e`).toString('base64') } },
      }),
    })
    const run = await gate(['--scan-result', ref('project/short-password', digest), '--format', 'json', SAMPLE_IMAGE], {
      POLICY_REGISTRY_CONFIG: short['config.json']!,
    })
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(JSON.parse(run.stdout)).toMatchObject({ verdict: 'error', error: { code: 'REGISTRY_REJECTED' } })
    expect(`${run.stdout}${run.stderr}`).not.toContain('[redacted]')
    expect(run.stderr).toContain('reading the scan results')
  })

  it('reads the real Trivy scan beside its SPDX SBOM to the same verdict as the scan alone', async () => {
    const { digest: alone } = await registry.push('project/trivy-alone', 'uid-1', {
      layers: [{ files: { 'scan.cdx.json': TRIVY } }],
    })
    const { digest: beside } = await registry.push('project/trivy-beside', 'uid-1', {
      layers: [{ files: { 'scan.cdx.json': TRIVY, 'sbom.spdx.json': '{"spdxVersion":"SPDX-2.3"}' } }],
    })
    const [a, b] = await Promise.all([
      gate(['--scan-result', ref('project/trivy-alone', alone), '--format', 'json', SAMPLE_IMAGE]),
      gate(['--scan-result', ref('project/trivy-beside', beside), '--format', 'json', SAMPLE_IMAGE]),
    ])
    expect(a.code).toBe(EXIT.VIOLATION)
    expect(JSON.parse(b.stdout).blocking).toEqual(JSON.parse(a.stdout).blocking)
  })
})

describe('secrets in what registries and token services say', () => {
  it('redacts the JSON report by value and never the verdict line of the summary', () => {
    const report = {
      verdict: 'fail',
      error: { code: 'MALFORMED_RESPONSE', message: 'x null y' },
      blocking: [{ id: 'CVE-1', package: 'fail-safe null' }],
    }
    expect(redactReport(report, ['null', 'fail', 'MALFORMED_RESPONSE'])).toEqual({
      verdict: 'fail',
      error: { code: 'MALFORMED_RESPONSE', message: 'x [redacted] y' },
      blocking: [{ id: 'CVE-1', package: '[redacted]-safe [redacted]' }],
    })
    const summary = 'Image  app@sha256:1\nGate   high\n\nFAIL: 1 vulnerability (1 finding) blocks at gate high.\n'
    expect(redactSummary(summary, ['high'])).toBe(
      'Image  app@sha256:1\nGate   [redacted]\n\nFAIL: 1 vulnerability (1 finding) blocks at gate high.\n',
    )
  })

  describe('a hostile registry of msw handlers over TLS', () => {
    const PASSWORD = 'echoed-password-0123456789xyz'
    const BASIC = Buffer.from(`${REGISTRY_USER}:${PASSWORD}`).toString('base64')
    let hostile: Simulator
    let files: Record<string, string>
    let tokenAnswer: unknown = { token: 'FAIL' }
    const repository = 'project/scan-results'

    beforeAll(async () => {
      const tls = await makeTls('Hostile Registry CA')
      hostile = await startSimulator(
        [
          http.get('/token', () => HttpResponse.json(tokenAnswer as Record<string, unknown>)),
          // The error bodies echo the credentials after 100 characters of padding: cut before redacting, a prefix would
          // show.
          http.get('/v2/echo/manifests/:ref', ({ request }) =>
            request.headers.get('authorization')
              ? HttpResponse.json(
                  {
                    errors: [
                      {
                        code: 'DENIED',
                        message: `${'x'.repeat(100)} ${PASSWORD}, you sent ${request.headers.get('authorization')}`,
                      },
                    ],
                  },
                  { status: 403 },
                )
              : new HttpResponse(null, { status: 401, headers: { 'www-authenticate': 'Basic realm="hostile"' } }),
          ),
          http.get(
            '/v2/busy/manifests/:ref',
            () => new HttpResponse(`${'y'.repeat(110)}${BASIC} ${PASSWORD}`, { status: 503 }),
          ),
          // A 200 that is not JSON: its start is quoted in the error, cut at 80 characters, with the password from the
          // 71st.
          http.get(
            '/v2/garbage/manifests/:ref',
            () =>
              new HttpResponse(`${'z'.repeat(70)}${PASSWORD} ${BASIC}`, {
                status: 200,
                headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
              }),
          ),
          http.get(
            `/v2/${repository}/manifests/:ref`,
            ({ request }) =>
              new HttpResponse(
                JSON.stringify({
                  errors: [
                    {
                      code: 'UNAUTHORIZED',
                      message: `token ${request.headers.get('authorization') ?? 'none'} rejected`,
                    },
                  ],
                }),
                {
                  status: 401,
                  headers: {
                    'www-authenticate': `Bearer realm="${hostile.url}/token",service="hostile",scope="repository:${repository}:pull"`,
                  },
                },
              ),
          ),
        ],
        tls,
      )
      files = writeFiles({
        'config.json': JSON.stringify({
          auths: { [hostile.hostPort]: { auth: Buffer.from(`${REGISTRY_USER}:${PASSWORD}`).toString('base64') } },
        }),
        'short.json': JSON.stringify({
          auths: { [hostile.hostPort]: { auth: Buffer.from(`${REGISTRY_USER}:e`).toString('base64') } },
        }),
        'ca.crt': tls.caCert,
      })
    })
    afterAll(async () => {
      await hostile?.close()
    })

    const gate = (args: string[], config = 'config.json') =>
      runGate([...args, '--gate', 'high', SAMPLE_IMAGE], {
        env: {
          POLICY_REGISTRY_CONFIG: files[config]!,
          POLICY_REGISTRY_CA_CERT: files['ca.crt']!,
          POLICY_POLL_INTERVAL: '100ms',
        },
      })
    const everything = (run: { stdout: string; stderr: string }) => `${run.stdout}${run.stderr}`

    it.each(['echo', 'busy', 'garbage'])(
      'never shows a piece of the password or its base64 from an error body (%s), in stderr, the JSON report or the ' +
        'results',
      async (path) => {
        const run = await gate([
          '--scan-result',
          `${hostile.hostPort}/${path}:tag`,
          '--format',
          'json',
          '--timeout',
          '4s',
        ])
        expect(run.code).toBe(EXIT.NO_VERDICT)
        for (let length = 8; length <= PASSWORD.length; length++)
          expect(everything(run)).not.toContain(PASSWORD.slice(0, length))
        expect(everything(run)).not.toContain(BASIC.slice(0, 8))
        expect(JSON.parse(run.stdout).verdict).toBe('error')
      },
    )

    it('with a one-letter password, echoes no body at all and redacts nothing: the summary and the JSON stay whole', async () => {
      const text = await gate(['--scan-result', `${hostile.hostPort}/echo:tag`], 'short.json')
      expect(text.code).toBe(EXIT.NO_VERDICT)
      expect(text.stderr).not.toContain('[redacted]')
      expect(text.stderr).not.toContain('you sent')
      expect(text.stderr).toContain(`${hostile.hostPort} answered 403 for the manifest`)
      const json = await gate(['--scan-result', `${hostile.hostPort}/echo:tag`, '--format', 'json'], 'short.json')
      expect(JSON.parse(json.stdout)).toMatchObject({ verdict: 'error', gate: 'high' })
    })

    it.each([
      ['FAIL', { token: 'FAIL' }],
      ['null', { token: 'null' }],
      ['a phrase of the summary', { token: 'nothing blocks at gate high' }],
    ])('a token service answering %s cannot remove the verdict or break the JSON', async (_name, answer) => {
      tokenAnswer = answer
      const text = await gate(['--scan-result', `${hostile.hostPort}/${repository}:tag`])
      expect(text.code).toBe(EXIT.NO_VERDICT)
      expect(text.stderr).toMatch(/no verdict: /)
      const json = await gate(['--scan-result', `${hostile.hostPort}/${repository}:tag`, '--format', 'json'])
      expect(JSON.parse(json.stdout)).toMatchObject({ verdict: 'error', error: { code: 'REGISTRY_REJECTED' } })
      const token = (answer as { token: string }).token
      if (token.length < 16) expect(everything(json)).not.toContain(`token ${token}`)
    })
  })
})
