// Property tests (fast-check): Image documents nobody wrote by hand, with nulls, missing keys, empty lists,
// odd severity spellings, duplicate IDs and large counts. The evaluation never throws on them, agrees with a
// deliberately naive reference model, is monotonic in the gate, and ignores the order of packages and ratings.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { evaluate, GATES, NoVerdictError, type Gate } from '../policy.ts'
import { SAMPLE_DIGEST } from './support/simulator.ts'

const severityText = fc.oneof(
  fc.constantFrom('Critical', 'CRITICAL', ' critical', 'High', 'HIGH ', 'Important', 'important', 'Medium', 'MODERATE', 'Low', 'low', 'Negligible', 'Unknown', 'UnknownSeverity', 'none', 'info', '', 'Highest', 'crit'),
  fc.string({ maxLength: 8 }),
  fc.constant(null),
  fc.integer(),
)
const rating = fc.record({ Severity: severityText, Score: fc.oneof(fc.double({ min: 0, max: 10, noNaN: true }), fc.constant(0), fc.constant(null), fc.constant('9.8')) }, { requiredKeys: [] })
const listOf = <T>(item: fc.Arbitrary<T>, maxLength: number) => fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 6, arbitrary: fc.array(item, { maxLength }) })
// A small pool of IDs so that the same CVE turns up in several packages; sometimes no CVEID at all.
const vulnerability = fc.record(
  { CVEID: fc.oneof(fc.constantFrom('CVE-2021-44228', 'CVE-2023-0286', 'cve-2023-0286', 'GHSA-jfh8-c2jp-5v3q', 'CVE-2016-2781', ''), fc.constant(null)), ID: fc.nat(50), Ratings: listOf(rating, 4) },
  { requiredKeys: ['ID'] },
)
const pkg = fc.record({ Name: fc.constantFrom('openssl', 'zlib', 'log4j-core', ''), Version: fc.constantFrom('1.0', '2.14.1', ''), Vulnerabilities: listOf(vulnerability, 6) }, { requiredKeys: [] })
const image = (maxPackages: number) => fc.record({ Digest: fc.constant(SAMPLE_DIGEST), Packages: listOf(pkg, maxPackages) }, { requiredKeys: ['Digest'] })

type Doc = { Packages?: Array<{ Name?: unknown; Vulnerabilities?: Array<{ CVEID?: unknown; ID: number; Ratings?: Array<{ Severity?: unknown; Score?: unknown }> | null }> | null }> | null }

/** The rules written out the slow, obvious way: flatten, rank, group. */
function referenceModel(document: Doc, gate: Gate) {
  const rank = (raw: unknown): number => {
    if (typeof raw !== 'string') return 0
    const word = raw.trim().toLowerCase()
    return word === 'critical' ? 4 : word === 'high' || word === 'important' ? 3 : word === 'medium' || word === 'moderate' ? 2 : word === 'low' ? 1 : 0
  }
  const names = ['unknown', 'low', 'medium', 'high', 'critical'] as const
  const findings = (document.Packages ?? []).flatMap((p, pi) =>
    (p.Vulnerabilities ?? []).map((v, vi) => ({
      id: typeof v.CVEID === 'string' && v.CVEID.trim() ? v.CVEID.trim() : `store-id:${v.ID}`,
      path: `${pi}/${vi}`,
      rank: Math.max(0, ...(v.Ratings ?? []).map((r) => rank(r.Severity))),
    })),
  )
  const worst = new Map<string, number>()
  for (const finding of findings) worst.set(finding.id, Math.max(worst.get(finding.id) ?? 0, finding.rank))
  const counts = { critical: 0, high: 0, medium: 0, low: 0, unknown: 0 }
  for (const value of worst.values()) counts[names[value]!]++
  const threshold = gate === 'none' ? Infinity : names.indexOf(gate)
  const blocking = findings.filter((finding) => finding.rank > 0 && finding.rank >= threshold).length
  return { counts, findings: findings.length, blocking, passed: blocking === 0 }
}

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const copy = [...items]
  for (let i = copy.length - 1; i > 0; i--) {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
    const j = seed % (i + 1)
    ;[copy[i], copy[j]] = [copy[j]!, copy[i]!]
  }
  return copy
}

describe('evaluate, on generated Image documents', () => {
  it('never throws and agrees with the reference model', () => {
    fc.assert(
      fc.property(image(12), fc.constantFrom(...GATES), (document, gate) => {
        const result = evaluate(document, gate, SAMPLE_DIGEST)
        const expected = referenceModel(document as Doc, gate)
        expect(result.counts).toEqual(expected.counts)
        expect(result.findings).toBe(expected.findings)
        expect(result.blocking).toHaveLength(expected.blocking)
        expect(result.passed).toBe(expected.passed)
        expect(Object.values(result.counts).reduce((sum, count) => sum + count, 0)).toBe(result.uniqueVulnerabilities)
      }),
      { numRuns: 500 },
    )
  })

  it('never turns a pass into a fail when the gate is raised', () => {
    fc.assert(
      fc.property(image(12), (document) => {
        // From the strictest gate to the most lenient: once it passes, every higher gate passes too.
        const passes = (['low', 'medium', 'high', 'critical', 'none'] as const).map((gate) => evaluate(document, gate).passed)
        for (let i = 1; i < passes.length; i++) if (passes[i - 1]) expect(passes[i]).toBe(true)
        expect(passes.at(-1)).toBe(true)
      }),
      { numRuns: 300 },
    )
  })

  it('does not depend on the order of packages, vulnerabilities or ratings', () => {
    fc.assert(
      fc.property(image(12), fc.constantFrom(...GATES), fc.nat(), (document, gate, seed) => {
        const reordered = {
          ...document,
          Packages: document.Packages && shuffled(document.Packages, seed).map((p) => ({
            ...p,
            Vulnerabilities: p.Vulnerabilities && shuffled(p.Vulnerabilities, seed + 1).map((v) => ({ ...v, Ratings: v.Ratings && shuffled(v.Ratings, seed + 2) })),
          })),
        }
        const before = evaluate(document, gate)
        const after = evaluate(reordered, gate)
        expect(after.counts).toEqual(before.counts)
        expect(after.passed).toBe(before.passed)
        // Findings without a CVEID or store ID would be named by position; the pool above always has an ID.
        expect(after.blocking).toEqual(before.blocking)
      }),
      { numRuns: 300 },
    )
  })

  it('handles large documents: thousands of packages, duplicate IDs everywhere', () => {
    fc.assert(
      fc.property(fc.array(pkg, { minLength: 2_000, maxLength: 3_000 }), fc.constantFrom(...GATES), (packages, gate) => {
        const document = { Digest: SAMPLE_DIGEST, Packages: packages }
        const result = evaluate(document, gate)
        expect(result.counts).toEqual(referenceModel(document as Doc, gate).counts)
        expect(result.uniqueVulnerabilities).toBeLessThanOrEqual(56) // 5 CVE IDs and 51 store IDs at most
      }),
      { numRuns: 5 },
    )
  })

  it('answers any JSON value with a verdict or a NoVerdictError, nothing else', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.record({ Digest: fc.constant(SAMPLE_DIGEST), Packages: fc.jsonValue() })), (value) => {
        try {
          const result = evaluate(value, 'high')
          expect(typeof result.passed).toBe('boolean')
        } catch (error) {
          expect(error).toBeInstanceOf(NoVerdictError)
          expect((error as NoVerdictError).code).toBe('MALFORMED_RESPONSE')
        }
      }),
      { numRuns: 1_000 },
    )
  })
})
