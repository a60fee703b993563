// A way in from Scan 1.0: --scan-policy reads a ScanPolicy whose Rego is one of TAP's documented templates
// (test/fixtures/scan-policy, as published) and refuses any other Rego, naming what it did not understand.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'
import { createHash } from 'node:crypto'
import { passedUnderScan1, basePolicy, evaluate } from '../gate/evaluate.ts'
import { exemptionsFrom } from '../gate/input.ts'
import { renderText } from '../gate/render.ts'
import { normaliseRego, parseGoDate, renderScanPolicyExemptions, scanPolicyFrom } from '../gate/scan-policy.ts'
import { EXIT, UsageError } from '../gate/vocabulary.ts'
import { SAMPLE_DIGEST, SAMPLE_IMAGE, sampleImageBody } from './support/documents.ts'
import { runGate, writeFiles } from './support/gate.ts'

const fixture = (name: string) => readFileSync(new URL(`./fixtures/scan-policy/${name}`, import.meta.url), 'utf8')
const GRYPE = fixture('grype-scan-policy.yaml')
const TRIVY = fixture('trivy-scan-policy.yaml')
const DETAIL = fixture('grype-detail-scan-policy.yaml')
const EXPIRATION = fixture('grype-expiration-scan-policy.yaml')
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')
const read = (yaml: string) =>
  scanPolicyFrom(
    parseAllDocuments(yaml).map((document) => document.toJS()),
    'policy.yaml',
    sha256,
  )
const NOW = Date.parse('2026-11-28T12:00:00Z')

describe('reading a ScanPolicy', () => {
  it("recognises TAP's Grype template and says what it means in the gate's terms", () => {
    expect(read(GRYPE)).toMatchObject({
      name: 'scan-policy',
      template: 'grype',
      gate: 'high',
      unknownAs: 'high',
      exemptions: [],
      notes: [],
    })
  })

  it("recognises TAP's Trivy template (lower-case severities, future keywords, every)", () => {
    expect(read(TRIVY)).toMatchObject({ name: 'trivy-scan-policy', template: 'trivy', gate: 'high', unknownAs: 'high' })
  })

  it('takes the lowest listed severity as the gate, and says where the gate is wider than the list', () => {
    const policy = read(GRYPE.replace('["Critical", "High", "UnknownSeverity"]', '["Critical", "Low"]'))
    expect(policy).toMatchObject({ gate: 'low', unknownAs: 'ignore' })
    expect(policy.notes).toEqual([
      'the gate blocks everything from low up, so medium and high findings block too, which the policy did not list',
    ])
    expect(read(GRYPE.replace('["Critical", "High", "UnknownSeverity"]', '["Negligible"]')).notes[0]).toBe(
      'Negligible is below low, which is the lowest gate: low',
    )
    expect(read(GRYPE.replace('["Critical", "High", "UnknownSeverity"]', '[]'))).toMatchObject({ gate: 'none' })
    expect(() => read(GRYPE.replace('["Critical", "High", "UnknownSeverity"]', '["Critical", "Severe"]'))).toThrow(
      /notAllowedSeverities holds "Severe"/,
    )
  })

  it(
    'takes ignored CVEs as the Rego does: strings are exemptions, objects never matched under Scan 1.0 and are said ' +
      'so; comments are no content',
    () => {
      const policy = read(
        GRYPE.replace(
          'ignoreCves := []',
          'ignoreCves := [\n      "CVE-2016-2781", # coreutils chroot, not used\n      {"id": "CVE-2023-0286", ' +
            '"detail": "X.400 not parsed", "expiration": "2027-01-31T00:00:00Z"},\n    ]',
        ),
      )
      expect(policy.exemptions).toEqual([
        {
          id: 'CVE-2016-2781',
          reason: 'ignored in ScanPolicy scan-policy',
          expires: 'never',
          expiresAt: Number.POSITIVE_INFINITY,
          owner: 'ScanPolicy scan-policy',
          permanent: true,
        },
      ])
      expect(policy.notes).toContain(
        "ignoreCves[1] (CVE-2023-0286) is an object, which TAP's grype template compares whole with the CVE ID, so " +
          'Scan 1.0 never ignored it: the gate does not either (give it in --exemptions with a reason and an expiry)',
      )
      expect(read(TRIVY.replace('ignoreCves := []', 'ignoreCves := [{"id": "CVE-2023-0286"}]')).exemptions).toEqual([])
      const evaluation = evaluate(sampleImageBody(), { ...basePolicy('medium', NOW), exemptions: policy.exemptions })
      expect(evaluation.suppressed.map((finding) => finding.id)).toEqual(['CVE-2016-2781'])
      expect(evaluation.blocking.map((finding) => finding.id)).toContain('CVE-2023-0286')
      expect(renderText(evaluation, { reference: SAMPLE_IMAGE, digest: SAMPLE_DIGEST }, { color: false })).toContain(
        'no expiry (give it one: --scan-policy ... --print-exemptions): CVE-2016-2781',
      )
    },
  )

  it('refuses Rego that is not the template, naming the rules it did not understand', () => {
    const changed = GRYPE.replace('not isSafe(vuln)', 'not isSafe(vuln)\n      comp.name != "openssl"')
    expect(() => read(changed)).toThrow(UsageError)
    expect(() => read(changed)).toThrow(
      /is not TAP's grype template, so the gate will not guess what it means: not understood: deny\[msg\] \{; missing or changed: deny\[msg\]/,
    )
    expect(() => read(GRYPE.replace('package main', 'package main\n\n    allow { true }'))).toThrow(
      /not understood: allow \{ true \}/,
    )
    expect(() => read('kind: ConfigMap\n')).toThrow(/holds no ScanPolicy/)
    expect(() => read(`${GRYPE}\n---\n${TRIVY}`)).toThrow(/holds 2 ScanPolicies/)
  })

  it('ignores formatting: the same rules indented or spaced otherwise are the template', () => {
    expect(normaliseRego('isSafe(match) {\n  ignore := contains(ignoreCves, match.id)\n  ignore\n}')).toBe(
      normaliseRego('isSafe( match ){ ignore:=contains( ignoreCves,match.id )\n\n ignore }'),
    )
    expect(read(GRYPE.replace(/\n {6}/g, '\n        ')).template).toBe('grype')
  })

  it("tells which findings Scan 1.0 passed: Grype's any-rating rule, Trivy's every-rating rule", () => {
    const critHigh = (1 << 4) | (1 << 3)
    const bit = (rank: number) => 1 << rank
    const grype = { template: 'grype' as const, notAllowed: critHigh }
    const trivy = { template: 'trivy' as const, notAllowed: critHigh }
    expect(passedUnderScan1(bit(3) | bit(2), grype)).toBe(true) // high and medium: the medium rating made it safe
    expect(passedUnderScan1(bit(3) | bit(2), trivy)).toBe(false)
    expect(passedUnderScan1(bit(4) | bit(3), grype)).toBe(false)
    expect(passedUnderScan1(0, grype)).toBe(false)
    expect(passedUnderScan1(0, trivy)).toBe(true)
  })

  it('--print-exemptions writes an exemptions file the gate reads back, with the gate to use', () => {
    const policy = read(
      GRYPE.replace(
        'ignoreCves := []',
        'ignoreCves := ["CVE-2016-2781", {"id": "CVE-2023-0286", "detail": "X.400 not parsed", "expiration": ' +
          '"2027-01-31"}]',
      ),
    )
    const yaml = renderScanPolicyExemptions(policy, NOW)
    expect(yaml).toContain('# Its gate: --gate high --unknown-as high (GATE=high, POLICY_UNKNOWN_AS=high).')
    expect(yaml).toContain(
      'expires: "2027-02-26"  # no expiration in the ScanPolicy: 90 days from today, review it by then',
    )
    const entries = exemptionsFrom(parseAllDocuments(yaml)[0]!.toJS(), 'printed.yaml')
    expect(entries.map((entry) => [entry.id, entry.expires])).toEqual([['CVE-2016-2781', '2027-02-26']])
    expect(yaml).toContain('# Note: ignoreCves[1] (CVE-2023-0286) is an object')
  })
})

describe('TAP\'s "further refine" variants of the Grype template', () => {
  it('recognises both as published, with the Grype rule for ratings', () => {
    expect(read(DETAIL)).toMatchObject({
      template: 'grype',
      variant: 'detail',
      gate: 'high',
      unknownAs: 'high',
      exemptions: [],
      notes: [],
    })
    expect(read(EXPIRATION)).toMatchObject({
      template: 'grype',
      variant: 'expiration',
      gate: 'high',
      exemptions: [],
      notes: [],
    })
  })

  it(
    'with detail: objects are exemptions with their detail as the reason; strings never matched (containsCve ' +
      'compares .id)',
    () => {
      const policy = read(
        DETAIL.replace(
          'ignoreCves := []',
          'ignoreCves := [{"id": "CVE-2023-0286", "detail": "X.400 not parsed"}, "CVE-2016-2781"]',
        ),
      )
      expect(policy.exemptions).toEqual([
        {
          id: 'CVE-2023-0286',
          reason: 'X.400 not parsed',
          expires: 'never',
          expiresAt: Number.POSITIVE_INFINITY,
          owner: 'ScanPolicy scan-policy',
          permanent: true,
        },
      ])
      expect(policy.notes).toEqual([
        expect.stringContaining(
          "ignoreCves[1] (CVE-2016-2781) is a string, which TAP's grype template refined with detail compares by its " +
            '.id, so Scan 1.0 never ignored it',
        ),
      ])
    },
  )

  it('with expiration: each entry until its own 2006-Jan-02 date (midnight UTC), saying where the Rego is looser', () => {
    const policy = read(
      EXPIRATION.replace(
        'ignoreCves := []',
        'ignoreCves := [{"id": "CVE-2023-0286", "detail": "X.400 not parsed", "expiration": "2027-Jan-31"}, {"id": ' +
          '"CVE-2016-2781", "expiration": "2026-Nov-01"}, {"id": "CVE-2023-0464", "expiration": "2027-01-31"}]',
      ),
    )
    expect(
      policy.exemptions.map((exemption) => [
        exemption.id,
        exemption.expires,
        new Date(exemption.expiresAt).toISOString(),
      ]),
    ).toEqual([
      ['CVE-2023-0286', '2027-Jan-31', '2027-01-30T23:59:59.999Z'],
      ['CVE-2016-2781', '2026-Nov-01', '2026-10-31T23:59:59.999Z'],
    ])
    expect(policy.notes).toEqual([
      expect.stringContaining('ignoreCves[2] (CVE-2023-0464) has no expiration in the 2006-Jan-02 layout'),
      expect.stringContaining(
        'containsCve checks that some entry of ignoreCves has not expired, not the matching entry',
      ),
    ])
    // The stricter reading: the expired entry no longer suppresses, though Scan 1.0 kept ignoring it while
    // CVE-2023-0286's was current.
    const evaluation = evaluate(sampleImageBody(), { ...basePolicy('medium', NOW), exemptions: policy.exemptions })
    expect(evaluation.suppressed.map((finding) => finding.id)).toEqual(['CVE-2023-0286'])
    expect(evaluation.exemptions.expired.map((exemption) => exemption.id)).toEqual(['CVE-2016-2781'])
    const yaml = renderScanPolicyExemptions(policy, NOW)
    expect(
      exemptionsFrom(parseAllDocuments(yaml)[0]!.toJS(), 'printed.yaml').map((entry) => [entry.id, entry.expiresAt]),
    ).toEqual([
      ['CVE-2023-0286', Date.UTC(2027, 0, 31) - 1],
      ['CVE-2016-2781', Date.UTC(2026, 10, 1) - 1],
    ])
  })

  it("reads Go's 2006-Jan-02 layout and nothing else", () => {
    expect(parseGoDate('2030-Dec-31')).toBe(Date.UTC(2030, 11, 31))
    expect(parseGoDate('2030-dec-31')).toBeUndefined()
    expect(parseGoDate('2030-Feb-30')).toBeUndefined()
    expect(parseGoDate('2030-12-31')).toBeUndefined()
  })
})

describe('--scan-policy in the built gate', () => {
  it('derives the gate, lists what blocks now but passed under Scan 1.0, and lets flags win', async () => {
    const files = writeFiles({ 'scan-policy.yaml': GRYPE, 'body.json': JSON.stringify(sampleImageBody()) })
    const run = await runGate(['--input', files['body.json']!, SAMPLE_IMAGE], {
      env: { POLICY_SCAN_POLICY: files['scan-policy.yaml']! },
    })
    expect(run.code).toBe(EXIT.VIOLATION)
    expect(run.stderr).toContain(
      "--scan-policy: ScanPolicy scan-policy (TAP's grype template): gate high, unknown severity counts as high, 0 " +
        'ignored CVEs as exemptions',
    )
    // Each of these has a rating outside the list (Medium or Low) beside its highest: under the Grype template that
    // made it safe.
    expect(run.stdout).toMatch(
      /Blocked now, passed under Scan 1\.0 \(ScanPolicy scan-policy passed a finding when any one of its ratings was outside notAllowedSeverities; the gate takes the highest rating\):\n +CRITICAL +9\.0 +CVE-2021-45046[^\n]*\n +HIGH +7\.5 +CVE-2023-0464[^\n]*\n +HIGH +7\.4 +CVE-2023-0286[^\n]*\n\n/,
    )
    const overridden = await runGate(
      [
        '--input',
        files['body.json']!,
        '--scan-policy',
        files['scan-policy.yaml']!,
        '--gate',
        'critical',
        '--format',
        'json',
        SAMPLE_IMAGE,
      ],
      { env: {} },
    )
    expect(overridden.stderr).toContain('gate high (overridden by --gate)')
    expect(
      JSON.parse(overridden.stdout).blocking.map((finding: { id: string; passedUnderScan1?: boolean }) => [
        finding.id,
        finding.passedUnderScan1 ?? false,
      ]),
    ).toEqual([
      ['CVE-2021-44228', false],
      ['CVE-2021-45046', true],
    ])
  })

  it('shows a hostile name, reason or ID from the ScanPolicy escaped, never as terminal control', async () => {
    const hostile = GRYPE.replace('name: scan-policy', 'name: "evil\\e[2K\\rPASS\\u202e"').replace(
      'ignoreCves := []',
      'ignoreCves := [{"id": "CVE-2016-2781\\u001b]8;;x\\u0007", "detail": "ok\\r\\nPASS: fine"}]',
    )
    const files = writeFiles({ 'scan-policy.yaml': hostile, 'body.json': JSON.stringify(sampleImageBody()) })
    for (const args of [['--print-exemptions'], ['--input', files['body.json']!, SAMPLE_IMAGE]]) {
      const run = await runGate(['--scan-policy', files['scan-policy.yaml']!, ...args], { env: {} })
      expect(run.code, run.stderr).not.toBe(EXIT.USAGE)
      expect(`${run.stdout}${run.stderr}`).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/)
      expect(run.stdout).toContain('evil\\x1b[2K\\x0dPASS\\u202e')
    }
  })

  it('prints the exemptions and exits 0 without an image or a store; refuses a changed Rego with exit 2', async () => {
    const files = writeFiles({
      'scan-policy.yaml': TRIVY.replace('ignoreCves := []', 'ignoreCves := ["CVE-2016-2781"]'),
      'changed.yaml': TRIVY.replace('match.id in ignoreCves', 'startswith(match.id, "GHSA")'),
    })
    const printed = await runGate(['--scan-policy', files['scan-policy.yaml']!, '--print-exemptions'], { env: {} })
    expect(printed.code).toBe(EXIT.PASS)
    expect(printed.stdout).toContain('  - id: "CVE-2016-2781"')
    const refused = await runGate(
      ['--scan-policy', files['changed.yaml']!, '--input', files['scan-policy.yaml']!, SAMPLE_IMAGE],
      { env: {} },
    )
    expect(refused.code).toBe(EXIT.USAGE)
    expect(refused.stderr).toContain(
      "is not TAP's trivy template, so the gate will not guess what it means: not understood: isIgnored(match) {; " +
        'missing or changed: isIgnored(match)',
    )
    const alone = await runGate(['--print-exemptions'], { env: {} })
    expect(alone.code).toBe(EXIT.USAGE)
  })
})
