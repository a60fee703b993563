// Data from outside is data: property tests that put hostile strings (terminal escapes, CR, C1 controls,
// bidirectional overrides, lone surrogates, megabyte IDs) into every field that reaches an output, and
// check what each output may contain: the text summary, JSON, SARIF, JUnit XML and the Tekton results.
import fc from 'fast-check'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { describe, expect, it } from 'vitest'
import { evaluate } from '../gate/evaluate.ts'
import { buildJsonReport, renderJunit, renderSarif, renderText, tektonResults } from '../gate/render.ts'
import { cut, displayText, escapeControls, redact, toJson } from '../gate/safe-text.ts'
import { type Policy } from '../gate/vocabulary.ts'
import { validateSarif } from './support/sarif.ts'
import { image, pkg, rating, SAMPLE_DIGEST, vuln } from './support/documents.ts'

/** Characters no output may carry raw (the text summary and JSON keep their own line breaks). */
const RAW_CONTROL =
  /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
/** What XML 1.0 may hold at all (its Char production). */
const NOT_XML_CHAR = /[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u

const ATTACKS = [
  'x\r\x1b[2K\x1b[32mPASS: nothing blocks at gate high.\x1b[8m',
  '\n\nPASS: nothing blocks at gate high.',
  'evil\u202egnp.exe',
  '\u009b31mred',
  'a\u2028b\u2029c',
  '\ud800lone',
  'tail\udc00',
  '\x00\x07\x7f',
  '</failure><testcase name="x"/>&amp;',
  '"},{"id":"forged"',
]
const hostileChar = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 0x20 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      0x7f,
      0x85,
      0x9b,
      0x61c,
      0x200e,
      0x2028,
      0x2029,
      0x202a,
      0x202e,
      0x2066,
      0x2069,
      0xd800,
      0xdbff,
      0xdc00,
      0xdfff,
      0xfeff,
      0xfffe,
      0xffff,
    ),
  },
  { weight: 1, arbitrary: fc.integer({ min: 0xa0, max: 0xffff }) },
)
const hostileText = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.array(hostileChar, { minLength: 1, maxLength: 60 }).map((codes) => String.fromCharCode(...codes)),
  },
  { weight: 1, arbitrary: fc.constantFrom(...ATTACKS) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(...ATTACKS), fc.integer({ min: 300, max: 5_000 }))
      .map(([attack, length]) => attack.repeat(Math.ceil(length / attack.length))),
  },
)
const hostileFinding = fc.record({
  id: hostileText,
  name: hostileText,
  version: hostileText,
  severity: fc.constantFrom('Critical', 'High', 'Low'),
})

function documentOf(findings: ReadonlyArray<{ id: string; name: string; version: string; severity: string }>) {
  return image(
    ...findings.map((finding) => pkg(finding.name, finding.version, vuln(finding.id, rating(finding.severity, 9.1)))),
  )
}

function policyFor(findings: ReadonlyArray<{ id: string; name: string }>, note: string): Policy {
  const [first, second] = findings
  return {
    gate: 'high',
    unknownAs: 'ignore',
    now: Date.parse('2026-11-28T12:00:00Z'),
    exemptions: first
      ? [
          {
            id: first.id.trim() || 'x',
            reason: note,
            expires: '2026-12-01',
            expiresAt: Date.parse('2026-12-01T23:59:59Z'),
            owner: note,
          },
        ]
      : [],
    triage: second ? [{ id: second.id.trim() || 'y', state: 'not_affected', justification: note }] : [],
  }
}

describe('every output neutralises data from outside', () => {
  it('the text summary: no raw control character, bounded lines, and the verdict is the last line and the only one', () => {
    fc.assert(
      fc.property(fc.array(hostileFinding, { minLength: 1, maxLength: 6 }), hostileText, (findings, note) => {
        const policy = policyFor(findings, note)
        const evaluation = evaluate(documentOf(findings), policy, SAMPLE_DIGEST)
        const text = renderText(
          evaluation,
          { reference: SAMPLE_DIGEST, digest: SAMPLE_DIGEST },
          { color: false, policy, triage: 'store' },
        )
        expect(text).not.toMatch(RAW_CONTROL)
        const lines = text.trimEnd().split('\n')
        for (const line of lines) expect(line.length).toBeLessThanOrEqual(400)
        expect(lines.filter((line) => /^(PASS|FAIL)\b/.test(line))).toHaveLength(1)
        expect(lines.at(-1)).toMatch(/^(PASS|FAIL): /)
      }),
      { numRuns: 300 },
    )
  })

  it('JSON and SARIF: well-formed, data escaped rather than dropped, SARIF valid against the 2.1.0 schema', () => {
    fc.assert(
      fc.property(fc.array(hostileFinding, { minLength: 1, maxLength: 6 }), hostileText, (findings, note) => {
        const evaluation = evaluate(documentOf(findings), policyFor(findings, note), SAMPLE_DIGEST)
        const report = buildJsonReport(
          { image: { reference: SAMPLE_DIGEST, digest: SAMPLE_DIGEST }, gate: 'high' },
          { evaluation },
        )
        const json = toJson(report)
        expect(json).not.toMatch(RAW_CONTROL)
        const parsed = JSON.parse(json)
        expect(parsed.blocking.map((finding: { id: string }) => finding.id)).toEqual(
          evaluation.blocking.map((finding) => cut(finding.id, 256)),
        )
        const sarif = renderSarif(report)
        expect(sarif).not.toMatch(RAW_CONTROL)
        expect(validateSarif(JSON.parse(sarif)), JSON.stringify(validateSarif.errors)).toBe(true)
      }),
      { numRuns: 200 },
    )
  })

  it('JUnit XML: well-formed, with only characters XML 1.0 allows, and the data still readable', () => {
    const parser = new XMLParser({ ignoreAttributes: false })
    fc.assert(
      fc.property(fc.array(hostileFinding, { minLength: 1, maxLength: 6 }), hostileText, (findings, note) => {
        const evaluation = evaluate(documentOf(findings), policyFor(findings, note), SAMPLE_DIGEST)
        const xml = renderJunit(
          buildJsonReport(
            { image: { reference: SAMPLE_DIGEST, digest: SAMPLE_DIGEST }, gate: 'high' },
            { evaluation, error: { code: 'X', message: note } },
          ),
        )
        expect(xml).not.toMatch(NOT_XML_CHAR)
        expect(XMLValidator.validate(xml)).toBe(true)
        const cases = [parser.parse(xml).testsuites.testsuite.testcase].flat()
        expect(cases).toHaveLength(evaluation.blocking.length + evaluation.suppressed.length + 1)
      }),
      { numRuns: 200 },
    )
  })

  it('Tekton results: no line break, at most ten short IDs with no comma of their own, far below 4096 bytes', () => {
    fc.assert(
      fc.property(fc.array(hostileFinding, { minLength: 1, maxLength: 30 }), (findings) => {
        const evaluation = evaluate(documentOf(findings), 'high', SAMPLE_DIGEST)
        const results = tektonResults(buildJsonReport({ image: null, gate: 'high' }, { evaluation }))
        const all = Object.values(results).join('')
        expect(all).not.toMatch(/[\r\n]/)
        expect(all).not.toMatch(RAW_CONTROL)
        expect(Buffer.byteLength(all)).toBeLessThan(1_024)
        const ids = results
          .blocking!.replace(/ \(\+\d+ more\)$/, '')
          .split(',')
          .filter(Boolean)
        expect(ids.length).toBeLessThanOrEqual(10)
        for (const id of ids) expect(id.length).toBeLessThanOrEqual(64)
      }),
      { numRuns: 200 },
    )
  })
})

describe('neutralising and cutting', () => {
  it.each([
    ['ESC and CR', 'a\x1b[31m\rb', 'a\\x1b[31m\\x0db'],
    ['a line break', 'a\nb', 'a\\x0ab'],
    ['C1 CSI and NEL', '\u009b\u0085', '\\x9b\\x85'],
    ['a right-to-left override', 'evil\u202etxt', 'evil\\u202etxt'],
    ['a lone surrogate', 'x\ud800y', 'x\\ud800y'],
    ['an emoji (a pair, kept)', 'ok 😀', 'ok 😀'],
    ['plain text', 'CVE-2021-44228', 'CVE-2021-44228'],
  ])('escapeControls shows %s as text', (_name, input, shown) => {
    expect(escapeControls(input)).toBe(shown)
  })

  it('cuts with an ellipsis and never splits a surrogate pair', () => {
    expect(cut('abcdef', 4)).toBe('abc…')
    expect(cut('abcd', 4)).toBe('abcd')
    expect(cut('ab😀cd', 4)).toBe('ab…')
    expect(displayText('\x1b'.repeat(50), 10)).toBe('\\x1b\\x1b\\…')
  })

  it('toJson escapes C1, DEL and bidirectional controls that JSON.stringify leaves raw', () => {
    const json = toJson({ id: '\u009b\u007f\u202e\x1b' })
    expect(json).toBe('{\n  "id": "\\u009b\\u007f\\u202e\\u001b"\n}\n')
    expect(JSON.parse(json).id).toBe('\u009b\u007f\u202e\x1b')
  })

  it('caps the report at 5000 findings per list and 256 characters per field, saying how many were left out', () => {
    const many = Array.from({ length: 5_003 }, (_, i) => ({
      id: `CVE-${i}-${'x'.repeat(300)}`,
      name: 'p',
      version: '1',
      severity: 'High',
    }))
    const report = buildJsonReport(
      { image: null, gate: 'high' },
      { evaluation: evaluate(documentOf(many), 'high', SAMPLE_DIGEST) },
    )
    expect(report.blocking).toHaveLength(5_000)
    expect(report.omitted).toEqual({ blocking: 3, suppressed: 0, warnings: 0, passing: 0 })
    const passing = buildJsonReport(
      { image: null, gate: 'critical' },
      { evaluation: evaluate(documentOf(many), 'critical', SAMPLE_DIGEST) },
    )
    expect(passing.passing).toHaveLength(5_000)
    expect(passing.omitted).toEqual({ blocking: 0, suppressed: 0, warnings: 0, passing: 3 })
    expect(report.blocking[0]!.id).toHaveLength(256)
    expect(tektonResults(report).blocking).toMatch(/ \(\+4993 more\)$/)
  })
})

describe('redaction', () => {
  const TOKEN = 'tok"en\\with&<xml>-and-json-0123456789'

  it.each([
    ['as written', `Bearer ${TOKEN}`],
    ['JSON-escaped', JSON.stringify({ echoed: `Bearer ${TOKEN}` })],
    [
      'XML-escaped',
      `<error message="Bearer ` +
        `${TOKEN.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')}"/>`,
    ],
  ])('removes the token %s', (_form, output) => {
    const redacted = redact(output, [TOKEN])
    expect(redacted).toContain('[redacted]')
    expect(redacted).not.toContain('0123456789')
  })

  it('leaves output alone when there is no secret', () => {
    expect(redact('unchanged', [''])).toBe('unchanged')
    expect(redact('unchanged', [])).toBe('unchanged')
  })
})
