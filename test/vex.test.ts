// VEX beside the scan (--vex) and out of it (--print-vex): real documents of their producers (test/fixtures/vex/
// SOURCES.md), the matching rules, the errors that name the file and the statement, KEV, and the round trip through
// the built gate, whose OpenVEX output is validated against the OpenVEX 0.2.0 JSON schema.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PackageURL } from 'packageurl-js'
import { describe, expect, it } from 'vitest'
import { evaluate } from '../gate/evaluate.ts'
import { renderText } from '../gate/render.ts'
import type { FileSystem } from '../gate/io.ts'
import { EXIT, UsageError } from '../gate/vocabulary.ts'
import type { Policy } from '../gate/vocabulary.ts'
import {
  createVexJudge,
  imageIdentity,
  loadVexStatements,
  normaliseRepository,
  purlCovers,
  renderOpenVex,
  vexStatementsFrom,
} from '../gate/vex.ts'
import type { ImageIdentity, VexStatement } from '../gate/vex.ts'
import { runGate } from './support/gate.ts'
import { compileSchema } from './support/json-schema.ts'

const FIXTURES = new URL('./fixtures/vex/', import.meta.url)
const fixture = (name: string) => new URL(name, FIXTURES).pathname
const read = (name: string) => JSON.parse(readFileSync(fixture(name), 'utf8')) as unknown
const TRIVY = new URL('./fixtures/cyclonedx/trivy-fluentd.cdx.json', import.meta.url).pathname
const DIGEST = `sha256:${'1'.repeat(64)}`
const IMAGE = `registry.example.com/team/fluentd@${DIGEST}`
const NOW = Date.parse('2026-12-01T12:00:00Z')

const statementsOf = (document: unknown, file = 'vex.json') => vexStatementsFrom(document, file)
const judge = (statements: VexStatement[], image: ImageIdentity) => createVexJudge(statements, image, PackageURL)
const image = (reference: string, ...digests: string[]) =>
  imageIdentity({ reference, digest: reference.slice(reference.indexOf('sha256:')) }, digests)

/** An OpenVEX document of the given statements, dated. */
const openVex = (statements: unknown[], timestamp = '2026-11-01T00:00:00Z') => ({
  '@context': 'https://openvex.dev/ns/v0.2.0',
  '@id': 'https://example.com/vex/1',
  author: 'Platform team',
  timestamp,
  version: 1,
  statements,
})

/** Why `document` is refused (a UsageError, code VEX), or fails the test. */
async function refusal(document: unknown): Promise<string> {
  const error = await statementsOf(document).then(
    () => undefined,
    (caught: unknown) => caught,
  )
  expect(error).toBeInstanceOf(UsageError)
  expect((error as UsageError).code).toBe('VEX')
  return (error as Error).message
}

describe('reading the VEX of real producers', () => {
  it("reads vexctl's OpenVEX: a fixed statement about two apk purls, the statement's own timestamp", async () => {
    const [statement] = await statementsOf(read('vexctl-demo.openvex.json'))
    expect(statement).toMatchObject({ vulnerability: 'CVE-2014-123456', status: 'fixed', ids: ['cve-2014-123456'] })
    expect(statement!.products.map((product) => product.purls[0]!.toString())).toEqual([
      'pkg:apk/distro/git@2.39.0-r1?arch=armv7',
      'pkg:apk/distro/git@2.39.0-r1?arch=x86_64',
    ])
    expect(statement!.timestamp).toBe(Date.parse('2023-12-04T21:55:19.945015302-06:00'))
  })

  it('takes the timestamp of a statement whose document has none (vexctl v0.2.0 test data)', async () => {
    const [statement] = await statementsOf(read('vexctl-v020-1.openvex.json'))
    expect(statement).toMatchObject({
      status: 'under_investigation',
      timestamp: Date.parse('2022-12-22T16:36:43-05:00'),
    })
  })

  it("reads a vendor's published VEX (Rancher): a version-less pkg:oci product with a subcomponent", async () => {
    const [statement] = await statementsOf(read('rancher-hardened-coredns.openvex.json'))
    expect(statement).toMatchObject({
      vulnerability: 'SUSE-SU-2025:01702-1',
      status: 'not_affected',
      justification: 'vulnerable_code_cannot_be_controlled_by_adversary',
      author: 'Rancher Security team',
      timestamp: Date.parse('2026-02-25T07:06:36Z'),
    })
    expect(statement!.products[0]!.subcomponents[0]!.purls[0]!.toString()).toBe('pkg:rpm/suse/glibc')
  })

  it("reads CycloneDX VEX about the document's own product (CISA case 1) and a BOM-Link to a purl (Trivy's docs)", async () => {
    const [cisa] = await statementsOf(read('cisa-case-1-not-affected.cdx.json'))
    expect(cisa).toMatchObject({
      status: 'not_affected',
      justification: 'vulnerable_code_not_present',
      timestamp: Date.parse('2022-03-03T00:00:00Z'),
    })
    expect(cisa!.products[0]!.named).toEqual({ name: 'ABC', version: '4.2' })
    const [trivy] = await statementsOf(read('trivy-docs.vex.cdx.json'))
    expect(trivy!.products[0]!.purls[0]!.toString()).toBe('pkg:golang/github.com/aws/aws-sdk-go@v1.44.234')
    expect(trivy!.timestamp).toBe(Number.NEGATIVE_INFINITY) // no time of its own or its document's: the oldest
  })

  it("refuses Dependency-Track's export as --vex where it states a finding with no analysis: that is a scan", async () => {
    expect(await refusal(read('dependency-track-export.cdx.json'))).toMatch(
      /vulnerabilities\[0\]: states no analysis.state for INT-001, so it is a finding, not a VEX statement: give the scan with --input/,
    )
  })
})

describe('a bad VEX document is exit 2, naming the file and the statement', () => {
  const good = { vulnerability: { name: 'CVE-2024-0001' }, products: [{ '@id': 'pkg:npm/a@1' }], status: 'fixed' }
  it.each([
    ['an unknown format', { statements: [] }, /vex.json: is neither OpenVEX .* nor CycloneDX VEX/],
    ['another OpenVEX version', { ...openVex([good]), '@context': 'https://openvex.dev/ns/v9' }, /not OpenVEX v0.2.0/],
    ['no statements', openVex([]), /has no statements/],
    ['no vulnerability', openVex([{ ...good, vulnerability: {} }]), /statement 1: has no vulnerability name/],
    ['no product', openVex([good, { ...good, products: [] }]), /statement 2: names no product for CVE-2024-0001/],
    ['a product with no identity', openVex([{ ...good, products: [{}] }]), /products\[0\]: names no product/],
    ['an unknown status', openVex([{ ...good, status: 'safe' }]), /status "safe" is not an OpenVEX status/],
    [
      'not_affected without a justification',
      openVex([{ ...good, status: 'not_affected' }]),
      /says not_affected about CVE-2024-0001 without a justification or impact_statement/,
    ],
    [
      'a justification that is no label',
      openVex([{ ...good, status: 'not_affected', justification: 'trust me' }]),
      /justification "trust me" is not an OpenVEX label/,
    ],
    ['a time that is not RFC 3339', openVex([{ ...good, timestamp: '1 Nov 2026' }]), /timestamp "1 Nov 2026" is not/],
    ['February 30', openVex([{ ...good, timestamp: '2026-02-30T00:00:00Z' }]), /is not an RFC 3339 time/],
    ['no time at all', { ...openVex([good]), timestamp: undefined }, /has no timestamp, and neither has its document/],
    ['a purl that does not parse', openVex([{ ...good, products: [{ '@id': 'pkg:' }] }]), /"pkg:" is not a purl/],
    [
      'CycloneDX with an unknown state',
      { bomFormat: 'CycloneDX', vulnerabilities: [{ id: 'CVE-1', analysis: { state: 'fine' }, affects: [] }] },
      /vulnerabilities\[0\]: analysis.state "fine" is not a CycloneDX state/,
    ],
    [
      'CycloneDX naming a component it does not have',
      {
        bomFormat: 'CycloneDX',
        vulnerabilities: [{ id: 'CVE-1', analysis: { state: 'resolved' }, affects: [{ ref: 'x' }] }],
      },
      /affects\[0\]: ref "x" names no component of this document/,
    ],
  ])('%s', async (_, document, message) => {
    expect(await refusal(document)).toMatch(message)
  })

  it('escapes what it quotes: a hostile status is shown escaped', async () => {
    const message = await refusal(openVex([{ ...good, status: 'x\u001b[2J\u0007' }]))
    expect(message).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/)
    expect(message).toContain('\\x1b')
  })

  it('reads a folder (a mounted ConfigMap) file by file, and refuses one that is empty or not JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vex-'))
    writeFileSync(join(dir, 'a.json'), JSON.stringify(openVex([good])))
    writeFileSync(join(dir, 'b.openvex'), JSON.stringify(openVex([good, good])))
    const files: FileSystem = {
      read: async (path) => readFileSync(path, 'utf8'),
      list: (path) => (path === dir ? readdirSync(dir).sort() : path.endsWith('empty') ? [] : undefined),
      writeAll: () => {},
      remove: () => {},
      fileExists: () => true,
      isDirectory: () => false,
      isWritableDirectory: () => false,
    }
    const signal = new AbortController().signal
    expect(await loadVexStatements([dir], files, signal)).toHaveLength(3)
    await expect(loadVexStatements(['/x/empty'], files, signal)).rejects.toThrow(/is a folder with no file in it/)
    writeFileSync(join(dir, 'c.json'), '{"statements": [')
    await expect(loadVexStatements([dir], files, signal)).rejects.toThrow(`--vex ${dir}/c.json is not JSON`)
  })
})

describe('which statement applies to a finding', () => {
  it("matches purls as OpenVEX's go-vex does: no version covers all, stated qualifiers must be there", async () => {
    const purl = PackageURL.fromString
    expect(purlCovers(purl('pkg:deb/debian/openssl'), purl('pkg:deb/debian/openssl@3.0.11-1?arch=amd64'))).toBe(true)
    expect(purlCovers(purl('pkg:deb/debian/openssl@3.0.11-1'), purl('pkg:deb/debian/openssl@3.0.11-2'))).toBe(false)
    expect(purlCovers(purl('pkg:deb/debian/openssl?arch=arm64'), purl('pkg:deb/debian/openssl@1?arch=amd64'))).toBe(
      false,
    )
    expect(purlCovers(purl('pkg:deb/ubuntu/openssl'), purl('pkg:deb/debian/openssl@1'))).toBe(false)
    // The purl spec's own normalisation: PyPI names compare as their canonical form.
    expect(purlCovers(purl('pkg:PyPI/Django_Rest'), purl('pkg:pypi/django-rest@1.0'))).toBe(true)
  })

  it("applies Rancher's statement to glibc in that image only, by repository however the image is named", async () => {
    const statements = await statementsOf(read('rancher-hardened-coredns.openvex.json'))
    const glibc = 'pkg:rpm/suse/glibc@2.31-150300.1?arch=x86_64&distro=sles-15.5'
    const id = 'SUSE-SU-2025:01702-1'
    for (const reference of [
      `rancher/hardened-coredns@${DIGEST}`,
      `docker.io/rancher/hardened-coredns:v1.11@${DIGEST}`,
      `index.docker.io/rancher/hardened-coredns@${DIGEST}`,
    ])
      expect(judge(statements, image(reference))(id, glibc, 'glibc', '2.31')?.status).toBe('not_affected')
    const coredns = judge(statements, image(`rancher/hardened-coredns@${DIGEST}`))
    expect(coredns(id, 'pkg:rpm/suse/openssl@3?arch=x86_64', 'openssl', '3')).toBeUndefined()
    expect(coredns('CVE-2025-0001', glibc, 'glibc', '2.31')).toBeUndefined()
    expect(judge(statements, image(`ghcr.io/rancher/hardened-coredns@${DIGEST}`))(id, glibc, 'glibc', '2')).toBe(
      undefined,
    )
    expect(judge(statements, imageIdentity(undefined, [DIGEST]))(id, glibc, 'glibc', '2')).toBeUndefined()
  })

  it('knows Docker Hub by any of its names, and its official images under library/', () => {
    expect(normaliseRepository('docker.io/library/debian')).toBe('index.docker.io/library/debian')
    expect(normaliseRepository('debian')).toBe('index.docker.io/library/debian')
    expect(normaliseRepository('https://registry-1.docker.io/rancher/fleet/')).toBe('index.docker.io/rancher/fleet')
    expect(normaliseRepository('localhost:5000/App')).toBe('localhost:5000/app')
  })

  it('names the image by digest: a pkg:oci version, a reference with digest, a sha-256 hash', async () => {
    const product = (fields: Record<string, unknown>) =>
      statementsOf(openVex([{ vulnerability: { name: 'CVE-2024-1' }, products: [fields], status: 'fixed' }]))
    const fluentd = image(IMAGE)
    const finding = ['CVE-2024-1', 'pkg:gem/rack@2.0.8', 'rack', '2.0.8'] as const
    for (const fields of [
      { '@id': `pkg:oci/fluentd@${DIGEST}` },
      { '@id': `pkg:oci/fluentd@${DIGEST}?repository_url=registry.example.com/team/fluentd` },
      { '@id': `pkg:oci/fluentd@${encodeURIComponent(DIGEST)}` },
      { '@id': IMAGE },
      { '@id': DIGEST },
      { hashes: { 'sha-256': '1'.repeat(64) } },
    ])
      expect(judge(await product(fields), fluentd)(...finding)?.status, JSON.stringify(fields)).toBe('fixed')
    for (const fields of [
      { '@id': `pkg:oci/fluentd@sha256:${'2'.repeat(64)}` },
      { '@id': `pkg:oci/fluentd?arch=amd64` }, // a qualifier the gate cannot check is no match
      { '@id': `pkg:oci/fluentd?tag=v1` }, // nor a tag it was not given
      { '@id': `pkg:oci/fluentd?repository_url=registry.example.com/other/fluentd` },
      { '@id': `registry.example.com/other/fluentd@${DIGEST}` },
    ])
      expect(judge(await product(fields), fluentd)(...finding), JSON.stringify(fields)).toBeUndefined()
  })

  it('matches the vulnerability by name or alias, in any case', async () => {
    const statements = await statementsOf(
      openVex([
        {
          vulnerability: { name: 'CVE-2021-44228', aliases: ['GHSA-jfh8-c2jp-5v3q'] },
          products: [{ '@id': 'pkg:maven/org.apache.logging.log4j/log4j-core' }],
          status: 'not_affected',
          justification: 'vulnerable_code_not_in_execute_path',
        },
      ]),
    )
    const log4j = 'pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1'
    const vex = judge(statements, image(IMAGE))
    for (const id of ['CVE-2021-44228', 'cve-2021-44228', 'GHSA-jfh8-c2jp-5v3q'])
      expect(vex(id, log4j, 'log4j-core', '2.14.1')?.status).toBe('not_affected')
    expect(vex('CVE-2021-45046', log4j, 'log4j-core', '2.14.1')).toBeUndefined()
  })

  it("matches the store's packages, which have no purl, by the purl's name and version", async () => {
    const statements = await statementsOf(
      openVex([
        { vulnerability: { name: 'CVE-1' }, products: [{ '@id': 'pkg:deb/debian/openssl@3.0.11-1' }], status: 'fixed' },
      ]),
    )
    const vex = judge(statements, image(IMAGE))
    expect(vex('CVE-1', '', 'openssl', '3.0.11-1')?.status).toBe('fixed')
    expect(vex('CVE-1', '', 'openssl', '3.0.13-1')).toBeUndefined()
  })

  it('takes the latest statement; statements of the same time that disagree suppress nothing', async () => {
    const about = (status: string, timestamp: string, extra: Record<string, unknown> = {}) => ({
      vulnerability: { name: 'CVE-1' },
      products: [{ '@id': 'pkg:npm/a' }],
      status,
      timestamp,
      ...extra,
    })
    const why = { justification: 'component_not_present' }
    const finding = ['CVE-1', 'pkg:npm/a@1.0.0', 'a', '1.0.0'] as const
    const latest = async (...statements: unknown[]) =>
      judge(await statementsOf(openVex(statements)), image(IMAGE))(...finding)
    expect(
      (
        await latest(
          about('affected', '2026-01-01T00:00:00Z', { action_statement: 'upgrade' }),
          about('not_affected', '2026-02-01T00:00:00Z', why),
        )
      )?.status,
    ).toBe('not_affected')
    expect(
      (
        await latest(
          about('not_affected', '2026-02-01T00:00:00Z', why),
          about('under_investigation', '2026-03-01T00:00:00+05:00'),
        )
      )?.status,
    ).toBe('under_investigation')
    const tie = await latest(about('fixed', '2026-02-01T00:00:00Z'), about('affected', '2026-02-01T01:00:00+01:00'))
    expect(tie).toMatchObject({ status: 'conflicting' })
    expect(tie?.detail).toMatch(/statement 1 says fixed and .*statement 2 says affected, at the same time/)
  })
})

describe('VEX in the verdict', () => {
  const trivy = () => JSON.parse(readFileSync(TRIVY, 'utf8')) as unknown
  const basePolicy = (fields: Partial<Policy>): Policy => ({
    gate: 'high',
    unknownAs: 'ignore',
    exemptions: [],
    triage: [],
    now: NOW,
    ...fields,
  })
  const notAffected = (name: string, purl: string) => ({
    vulnerability: { name },
    products: [
      { '@id': 'pkg:oci/fluentd?repository_url=registry.example.com/team/fluentd', subcomponents: [{ '@id': purl }] },
    ],
    status: 'not_affected',
    justification: 'vulnerable_code_not_in_execute_path',
  })

  it('suppresses with the justification shown; a known-exploited finding stays blocking without --vex-accepts-kev', async () => {
    const statements = await statementsOf(openVex([notAffected('CVE-2019-18224', 'pkg:deb/debian/libidn2-0')]))
    const vex = judge(statements, image(IMAGE))
    const plain = evaluate(trivy(), basePolicy({ vex }))
    expect(plain.suppressed.map((finding) => [finding.id, finding.suppressedBy.kind])).toEqual([
      ['CVE-2019-18224', 'vex'],
    ])
    expect(plain.blocking).toHaveLength(2)
    const kev = new Map([['CVE-2019-18224', { dateAdded: '2024-01-01' }]])
    const refused = evaluate(trivy(), basePolicy({ vex, kev }))
    expect(refused.suppressed).toHaveLength(0)
    expect(refused.vexNotAccepted.map((finding) => finding.id)).toEqual(['CVE-2019-18224'])
    const text = renderText(refused, { reference: IMAGE, digest: DIGEST }, { color: false })
    expect(text).toMatch(/VEX not applied, known exploited \(--vex-accepts-kev applies it\):\n.*CVE-2019-18224/)
    const accepted = evaluate(trivy(), basePolicy({ vex, kev, vexAcceptsKev: true }))
    expect(accepted.suppressed.map((finding) => finding.id)).toEqual(['CVE-2019-18224'])
    const listed = renderText(accepted, { reference: IMAGE, digest: DIGEST }, { color: false })
    expect(listed).toMatch(
      /Known exploited, yet suppressed[^\n]*\n\nKnown-exploited findings suppressed:\n.*CVE-2019-18224.*VEX not_affected/,
    )
  })

  it("shows an affected statement's action statement beside the blocking finding, escaped", async () => {
    const statements = await statementsOf(
      openVex([
        {
          vulnerability: { name: 'CVE-2019-18276' },
          products: [{ '@id': 'pkg:deb/debian/bash' }],
          status: 'affected',
          action_statement: 'upgrade bash\u001b[31m\u009b now',
        },
      ]),
    )
    const evaluation = evaluate(trivy(), basePolicy({ vex: judge(statements, image(IMAGE)) }))
    const bash = evaluation.blocking.find((finding) => finding.id === 'CVE-2019-18276')
    expect(bash?.vex).toMatchObject({ status: 'affected', action: 'upgrade bash\u001b[31m\u009b now' })
    const text = renderText(evaluation, { reference: IMAGE, digest: DIGEST }, { color: false })
    expect(text).toMatch(/CVE-2019-18276 .*VEX affected: upgrade bash\\x1b\[31m\\x9b now \(vex.json, statement 1/)
    expect(text).not.toMatch(/[\u001b\u009b]/)
  })
})

describe('VEX out: --print-vex', () => {
  const schema = read('openvex_json_schema-0.2.0.json') as object
  const validate = compileSchema(schema)

  it('writes valid OpenVEX for each kind of decision, the image as product and packages as subcomponents', async () => {
    const statements = await statementsOf(
      openVex([
        {
          vulnerability: { name: 'CVE-2019-18224' },
          products: [{ '@id': 'pkg:deb/debian/libidn2-0' }],
          status: 'fixed',
        },
        {
          vulnerability: { name: 'CVE-2019-18276' },
          products: [{ '@id': 'pkg:deb/debian/bash' }],
          status: 'affected',
          action_statement: 'upgrade',
        },
      ]),
    )
    const evaluation = evaluate(JSON.parse(readFileSync(TRIVY, 'utf8')), {
      gate: 'high',
      unknownAs: 'ignore',
      now: NOW,
      vex: judge(statements, image(IMAGE)),
      triage: [],
      exemptions: [
        {
          id: 'CVE-2020-8165',
          reason: 'JSON encoder unused \u0007',
          expires: '2027-01-31',
          expiresAt: Date.parse('2027-01-31T23:59:59Z'),
          owner: 'team-a',
        },
      ],
    })
    const printed = await renderOpenVex(evaluation, { reference: IMAGE, digest: DIGEST }, [], [], NOW)
    expect(printed).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/)
    const document = JSON.parse(printed!)
    expect(validate(document), JSON.stringify(validate.errors)).toBe(true)
    const product = `pkg:oci/fluentd@${DIGEST}?repository_url=registry.example.com%2Fteam%2Ffluentd`
    expect(document.statements).toEqual([
      expect.objectContaining({
        vulnerability: { name: 'CVE-2019-18224' },
        products: [
          { '@id': product, subcomponents: [{ '@id': 'pkg:deb/debian/libidn2-0@2.0.5-1?distro=debian-10.2' }] },
        ],
        status: 'fixed',
      }),
      expect.objectContaining({
        vulnerability: { name: 'CVE-2020-8165' },
        status: 'not_affected',
        impact_statement: 'JSON encoder unused \u0007',
        status_notes: 'amr-policy-gate exemption until 2027-01-31, owner team-a',
      }),
      expect.objectContaining({
        vulnerability: { name: 'CVE-2019-18276' },
        status: 'affected',
        action_statement: 'upgrade',
      }),
    ])
  })

  it('writes nothing when nothing was decided', async () => {
    const evaluation = evaluate(JSON.parse(readFileSync(TRIVY, 'utf8')), 'high')
    expect(await renderOpenVex(evaluation, { reference: IMAGE, digest: DIGEST }, [], [], NOW)).toBeUndefined()
  })
})

describe('VEX through the built gate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vex-gate-'))
  const write = (name: string, content: unknown) => {
    const path = join(dir, name)
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content))
    return path
  }
  const vexFile = write(
    'team.openvex.json',
    openVex([
      {
        vulnerability: { name: 'CVE-2019-18224' },
        products: [
          {
            '@id': 'pkg:oci/fluentd?repository_url=registry.example.com/team/fluentd',
            subcomponents: [{ '@id': 'pkg:deb/debian/libidn2-0' }],
          },
        ],
        status: 'not_affected',
        justification: 'vulnerable_code_not_in_execute_path',
      },
    ]),
  )
  const exemptions = write(
    'exemptions.yaml',
    'exemptions:\n  - id: CVE-2020-8165\n    reason: JSON encoder unused\n    expires: 2099-01-31\n',
  )

  it('an OpenVEX not_affected for our image suppresses the finding, from the flag or POLICY_VEX, in every output', async () => {
    const results = join(dir, 'results')
    mkdirSync(results)
    const report = join(dir, 'report.sarif')
    const run = await runGate([
      '--gate',
      'high',
      '--input',
      TRIVY,
      '--vex',
      vexFile,
      '--results-dir',
      results,
      '--report-file',
      report,
      IMAGE,
    ])
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(run.stdout).toContain('Policy VEX (1 statement)')
    expect(run.stdout).toMatch(
      /Suppressed, would block otherwise:\n.*CVE-2019-18224 .*VEX not_affected: vulnerable_code_not_in_execute_path \(.*team.openvex.json, statement 1, by Platform team\)/,
    )
    expect(readFileSync(join(results, 'suppressed'), 'utf8')).toBe('1')
    const sarif = JSON.parse(readFileSync(report, 'utf8'))
    const suppressed = sarif.runs[0].results.filter((result: { suppressions?: unknown[] }) => result.suppressions)
    expect(suppressed).toHaveLength(1)
    expect(suppressed[0].suppressions[0].justification).toMatch(
      /^VEX not_affected: vulnerable_code_not_in_execute_path/,
    )
    const junit = join(dir, 'report.xml')
    const fromEnv = await runGate(['--input', TRIVY, '--report-file', junit, IMAGE], {
      env: { GATE: 'high', POLICY_VEX: `${vexFile}, ${vexFile}` },
    })
    expect(fromEnv.stdout).toContain('Policy VEX (2 statements)')
    expect(readFileSync(junit, 'utf8')).toMatch(/<skipped message="VEX not_affected/)
  })

  it("--print-vex's document, given back with --vex, reproduces the verdict", async () => {
    const printed = await runGate([
      '--gate',
      'high',
      '--input',
      TRIVY,
      '--vex',
      vexFile,
      '--exemptions',
      exemptions,
      '--print-vex',
      IMAGE,
    ])
    expect(printed.code).toBe(EXIT.VIOLATION)
    expect(printed.stderr).toContain('FAIL: 1 vulnerability (1 finding) blocks at gate high.')
    const document = JSON.parse(printed.stdout)
    expect(document.statements.map((statement: { status: string }) => statement.status)).toEqual([
      'not_affected',
      'not_affected',
    ])
    const again = await runGate([
      '--gate',
      'high',
      '--input',
      TRIVY,
      '--vex',
      write('printed.json', printed.stdout),
      IMAGE,
    ])
    expect(again.code).toBe(EXIT.VIOLATION)
    expect(again.stdout).toContain('FAIL: 1 vulnerability (1 finding) blocks at gate high.')
    expect(again.stdout).toMatch(/Blocking findings, worst first:\n  HIGH .*CVE-2019-18276/)
    const both = await runGate(['--gate', 'high', '--input', TRIVY, '--print-vex', '--format', 'json', IMAGE])
    expect(both.code).toBe(EXIT.USAGE)
  })

  it('a bad --vex is exit 2 before anything is judged, naming the file and statement', async () => {
    const bad = write(
      'bad.json',
      openVex([{ vulnerability: { name: 'CVE-1' }, products: [{ '@id': 'pkg:npm/a' }], status: 'not_affected' }]),
    )
    const run = await runGate(['--gate', 'high', '--input', TRIVY, '--vex', bad, IMAGE])
    expect(run.code).toBe(EXIT.USAGE)
    expect(run.stderr).toContain(`--vex ${bad}, statement 1: says not_affected about CVE-1 without a justification`)
    expect(run.stderr).not.toMatch(/\n\s+at /)
  })

  it("Dependency-Track's VEX export with --triage passes where its analysis says so, and blocks where not", async () => {
    const resolved = await runGate([
      '--gate',
      'low',
      '--triage',
      '--input',
      fixture('dependency-track-export.cdx.json'),
    ])
    expect(resolved.code).toBe(EXIT.VIOLATION)
    expect(resolved.stdout).toMatch(/Blocking findings, worst first:\n  HIGH .*INT-001 +acme-app@1.0.0\n/)
    expect(resolved.stdout).toMatch(/Suppressed, would block otherwise:\n  LOW .*INT-002 .*triage resolved/)
    const untriaged = await runGate(['--gate', 'low', '--input', fixture('dependency-track-export.cdx.json')])
    expect(untriaged.stdout).toContain('FAIL: 2 vulnerabilities (2 findings) block at gate low.')
    const onlyLow = await runGate(
      ['--gate', 'low', '--triage', '--input', fixture('dependency-track-export.cdx.json')],
      {
        env: {
          POLICY_EXEMPTIONS: write(
            'int.yaml',
            'exemptions:\n  - id: INT-001\n    reason: internal\n    expires: 2099-01-01\n',
          ),
        },
      },
    )
    expect(onlyLow.code).toBe(EXIT.PASS)
    const disagreeing = await runGate([
      '--gate',
      'low',
      '--triage',
      '--input',
      fixture('dependency-track-export-disagreeing.cdx.json'),
    ])
    expect(disagreeing.code).toBe(EXIT.VIOLATION)
    expect(disagreeing.stdout).toContain('FAIL: 1 vulnerability (1 finding) blocks at gate low.')
  })
})
