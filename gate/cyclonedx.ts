import { DIGEST_RE } from './input.ts'
import { SCAN_DOCUMENT, describeJson, isObject, listAt, notAnObject, textOf } from './json.ts'
import { cut } from './safe-text.ts'
import {
  addRating,
  importCommonJs,
  mergeTally,
  newTally,
  normaliseSeverity,
  resetTally,
  SUPPRESSING_TRIAGE_STATES,
} from './vocabulary.ts'
import type { Analysis, FixState, JudgeFinding, KnownExploited, RatingTally, Severity } from './vocabulary.ts'

// ---------------------------------------------------------------------------------------------
// Pure functions: a scanner's CycloneDX

export const UNKNOWN_FIX: FixState = { state: 'unknown' }
/** A scanner's KEV rating says a CVE is known exploited, without the catalog's dates. */
export const NO_KEV_DATES: KnownExploited = {}
export const NOT_FIXED: FixState = { state: 'not-fixed' }
/**
 * Rating methods whose score is a CVSS score; other methods' scores (EPSS, KEV: method "other") are not compared by
 * --fail-on-score.
 */
export const CVSS_METHODS: ReadonlySet<string> = new Set(['CVSSv2', 'CVSSv3', 'CVSSv31', 'CVSSv4'])
/** The CycloneDX versions whose vulnerabilities the gate reads (1.4 introduced them; 1.7 is the newest). */
export const CYCLONEDX_VERSION_RE = /^1\.[4-7]$/

/** A CycloneDX BOM (1.4 to 1.7), told by its content. */
export function isCycloneDx(document: unknown): document is Record<string, unknown> {
  return (
    isObject(document) &&
    document.bomFormat === 'CycloneDX' &&
    typeof document.specVersion === 'string' &&
    CYCLONEDX_VERSION_RE.test(document.specVersion)
  )
}

/** A document that says it is CycloneDX in a version the gate does not read: never taken for anything else. */
export function unreadCycloneDxVersion(document: unknown): string | undefined {
  if (!isObject(document) || document.bomFormat !== 'CycloneDX') return undefined
  const version = document.specVersion
  if (typeof version === 'string' && CYCLONEDX_VERSION_RE.test(version)) return undefined
  return typeof version === 'string' ? JSON.stringify(cut(version, 20)) : describeJson(version)
}

/** The CycloneDX files of a scan's published results, judged together: one verdict over all of them. */
export class ScanFiles {
  readonly files: ReadonlyArray<{ readonly name: string; readonly bom: Record<string, unknown> }>
  /**
   * Files of the results that hold no vulnerabilities to judge, each with the reason (an SPDX SBOM, imgpkg's metadata).
   */
  readonly setAside: readonly SetAside[]
  /** Where the files were read (the scan result by digest) and the sha256 of its top manifest: for --attest. */
  source?: { readonly uri: string; readonly sha256: string }
  constructor(files: ScanFiles['files'], setAside: readonly SetAside[] = []) {
    this.files = files
    this.setAside = setAside
  }
}

/** Something from the input that holds no vulnerability to judge, and why it was left out. */
export interface SetAside {
  readonly what: string
  readonly reason: string
}

/**
 * Trivy's free text, "Upgrade X to version 1.2.3, 1.1.9" (since v0.44 several joined with "; "): the fixed
 * versions by package name. Empty when it names none.
 */
export function fixesFromRecommendation(recommendation: unknown): Map<string, string> {
  const fixes = new Map<string, string>()
  if (typeof recommendation !== 'string') return fixes
  for (const part of recommendation.split(/;\s*/)) {
    const match = /^\s*Upgrade (.+?) to version (.+?)\s*$/i.exec(part)
    if (match) fixes.set(match[1]!, match[2]!)
  }
  return fixes
}

/**
 * Who wrote a CycloneDX document, from metadata.tools (1.4's list, or 1.5's {components, services}): each writes fixes
 * its own way.
 */
export type Producer = 'trivy' | 'grype' | 'other'

export function producerOf(bom: Record<string, unknown>): Producer {
  const tools = isObject(bom.metadata) ? bom.metadata.tools : undefined
  const entries = Array.isArray(tools)
    ? tools
    : isObject(tools)
      ? [
          ...(Array.isArray(tools.components) ? tools.components : []),
          ...(Array.isArray(tools.services) ? tools.services : []),
        ]
      : []
  const names = new Set(entries.filter(isObject).map((tool) => textOf(tool.name).toLowerCase()))
  // A document both claim (one tool's output converted by the other) follows neither rule.
  if (names.has('trivy') === names.has('grype')) return 'other'
  return names.has('trivy') ? 'trivy' : 'grype'
}

/** A property's value among a CycloneDX object's `properties`. */
export function propertyOf(owner: Record<string, unknown>, name: string): string | undefined {
  if (!Array.isArray(owner.properties)) return undefined
  for (const property of owner.properties)
    if (isObject(property) && property.name === name && typeof property.value === 'string' && property.value.trim())
      return property.value.trim()
  return undefined
}

/**
 * What a finding's own data says of a fix, by its producer's rule (docs/policy.md, "Fix states"). Only evidence about
 * this (component, vulnerability) pair says "not fixed"; anything else is unknown, which --only-fixed never
 * lets through.
 * - Trivy writes a recommendation naming the package when a fix exists (or, in some versions, the
 *   FixedVersion property): without either, not fixed. A recommendation naming only other packages: unknown.
 * - Grype lists the pair's own versions: `unaffected` ranges are the fixes (or, in 0.41-era output, the
 *   grype:fixed_versions property); `affected` with no `unaffected` range is not fixed; no versions, unknown.
 * - Any other producer: unknown (a VEX's `unaffected` ranges are versions not affected, not fixes).
 */
export function fixOf(
  producer: Producer,
  vulnerability: Record<string, unknown>,
  recommended: ReadonlyMap<string, string>,
  affect: Record<string, unknown> | undefined,
  packageName: string,
): FixState {
  if (producer === 'trivy') {
    const version = recommended.get(packageName) ?? propertyOf(vulnerability, 'aquasecurity:trivy:FixedVersion')
    if (version) return { state: 'fixed', version }
    return recommended.size || typeof vulnerability.recommendation === 'string' ? UNKNOWN_FIX : NOT_FIXED
  }
  if (producer === 'grype') {
    const versions = affect && Array.isArray(affect.versions) ? affect.versions.filter(isObject) : []
    let ranges = ''
    for (const version of versions) {
      const range = version.status === 'unaffected' ? textOf(version.range) || textOf(version.version) : ''
      if (range) ranges = ranges ? `${ranges}, ${range}` : range
    }
    const fixed = ranges || propertyOf(vulnerability, 'grype:fixed_versions')
    if (fixed) return { state: 'fixed', version: fixed }
    return versions.some((version) => version.status === 'affected') ? NOT_FIXED : UNKNOWN_FIX
  }
  return UNKNOWN_FIX
}

/**
 * Of two accounts of one pair's fix, the one that lets less through: fixed says most, not fixed needs every account to
 * say it.
 */
export function mergeFix(a: FixState, b: FixState): FixState {
  if (a.state === 'fixed') return a
  if (b.state === 'fixed') return b
  return a.state === 'unknown' || b.state === 'unknown' ? UNKNOWN_FIX : NOT_FIXED
}

/**
 * The digest a document names for the image it describes: a store body's Digest, or for a CycloneDX BOM
 * Trivy's RepoDigest property or a component name or version ending in one. Undefined when it names none.
 */
export function digestNamedBy(document: unknown): string | undefined {
  const boms = bomsOf(document)
  if (boms) return boms.map((file) => digestOfBom(file.bom)).find(Boolean)
  const digest = isObject(document) && typeof document.Digest === 'string' ? document.Digest.trim() : ''
  return DIGEST_RE.test(digest) ? digest.toLowerCase() : undefined
}

/** A scanner's CycloneDX, one or the several files of a scan result, by name; undefined for a store body. */
export function bomsOf(document: unknown): ScanFiles['files'] | undefined {
  return document instanceof ScanFiles
    ? document.files
    : isCycloneDx(document)
      ? [{ name: SCAN_DOCUMENT, bom: document }]
      : undefined
}

export function subjectComponent(bom: Record<string, unknown>): Record<string, unknown> {
  return isObject(bom.metadata) && isObject(bom.metadata.component) ? bom.metadata.component : {}
}

export function digestOfBom(bom: Record<string, unknown>): string | undefined {
  const component = subjectComponent(bom)
  for (const candidate of [propertyOf(component, 'aquasecurity:trivy:RepoDigest'), component.version, component.name]) {
    const digest = typeof candidate === 'string' ? /sha256:[0-9a-f]{64}$/i.exec(candidate.trim())?.[0] : undefined
    if (digest) return digest.toLowerCase()
  }
  return undefined
}

/**
 * What a CycloneDX document is the scan of, in words: metadata.component's name and version (or purl); undefined when
 * it has none.
 */
export function subjectOf(bom: Record<string, unknown>): string | undefined {
  const component = subjectComponent(bom)
  const name = textOf(component.name) || textOf(component.purl)
  if (!name) return undefined
  const version = textOf(component.version)
  return version && !name.endsWith(version) ? `${name}@${version}` : name
}

/**
 * CVSS base scores of vectors: v2, v3.0, v3.1 and v4.0, from ae-cvss-calculator, loaded with the first CycloneDX
 * document.
 */
export type CvssScorer = (vector: string) => { readonly score: number; readonly version: 2 | 3 | 4 } | undefined

/** The base metrics every complete vector of a version names, each once: an incomplete vector has no base score. */
export const CVSS_BASE_METRICS: Record<2 | 3 | 4, readonly string[]> = {
  2: ['AV', 'AC', 'Au', 'C', 'I', 'A'],
  3: ['AV', 'AC', 'PR', 'UI', 'S', 'C', 'I', 'A'],
  4: ['AV', 'AC', 'AT', 'PR', 'UI', 'VC', 'VI', 'VA', 'SC', 'SI', 'SA'],
}

export let cvssScorer: Promise<CvssScorer> | undefined

/**
 * The CVSS calculator, loaded once. A well-kept library (FIRST's formulas for four versions, with its own
 * test vectors) rather than hand-written arithmetic; the gate adds only the check that every base metric is
 * named once, since the library scores an incomplete vector as if the missing metrics were the lowest.
 */
export function loadCvssScorer(): Promise<CvssScorer> {
  cvssScorer ??= importCommonJs(import('ae-cvss-calculator')).then(({ fromVector }) => (vector: string) => {
    const text = vector.trim()
    const version = /^CVSS:4\.0\//.test(text)
      ? 4
      : /^CVSS:3\.[01]\//.test(text)
        ? 3
        : /^(?:CVSS:2\.0\/)?AV:[LAN]\/AC:[HML]\/Au:/.test(text)
          ? 2
          : /^AV:[NALP]\/AC:[LH]\/PR:/.test(text)
            ? 3
            : undefined
    if (!version) return undefined
    const named = text
      .replace(/^CVSS:[\d.]+\//, '')
      .split('/')
      .map((part) => part.split(':', 1)[0]!)
    if (CVSS_BASE_METRICS[version].some((metric) => named.filter((name) => name === metric).length !== 1))
      return undefined
    try {
      const score = (
        fromVector(version === 3 && !text.startsWith('CVSS:') ? `CVSS:3.1/${text}` : text) as {
          calculateScores(): { base?: unknown }
        } | null
      )?.calculateScores().base
      return typeof score === 'number' && Number.isFinite(score) && score >= 0 && score <= 10
        ? { score, version }
        : undefined
    } catch {
      return undefined
    }
  })
  return cvssScorer
}

/** A rating that states a severity: "none" is one; "unknown" (or none at all) leaves its score or vector to say it. */
export function statesSeverity(rating: Record<string, unknown>): boolean {
  return (
    typeof rating.severity === 'string' &&
    (normaliseSeverity(rating.severity) !== 'unknown' || !/^\s*unknown\s*$/i.test(rating.severity))
  )
}

/**
 * A CVSS rating (or one of no method) that states neither severity nor score, only a vector: osv-scanner writes these.
 */
export function onlyVector(rating: Record<string, unknown>): boolean {
  const method = rating.method
  return (
    typeof rating.vector === 'string' &&
    rating.vector !== '' &&
    typeof rating.score !== 'number' &&
    (method === undefined || (typeof method === 'string' && CVSS_METHODS.has(method))) &&
    !statesSeverity(rating)
  )
}

/**
 * Whether a document has a rating whose severity only its vector can tell: a cheap look before the calculator is
 * loaded.
 */
export function needsCvss(document: unknown): boolean {
  for (const { bom } of bomsOf(document) ?? []) {
    const vulnerabilities = Array.isArray(bom.vulnerabilities) ? bom.vulnerabilities : []
    for (let v = 0; v < vulnerabilities.length; v++) {
      const ratings = isObject(vulnerabilities[v]) ? (vulnerabilities[v] as Record<string, unknown>).ratings : undefined
      if (!Array.isArray(ratings)) continue
      for (let r = 0; r < ratings.length; r++) {
        const rating = ratings[r]
        if (isObject(rating) && onlyVector(rating)) return true
      }
    }
  }
  return false
}

/**
 * A CVSS score's qualitative severity: FIRST's scale for v3 and v4, NVD's for v2 (which has no critical); 0 is none,
 * which counts as unknown.
 */
export function severityOfScore(score: number, version: 2 | 3 | 4): Severity {
  if (score <= 0) return 'unknown'
  if (version === 2) return score >= 7 ? 'high' : score >= 4 ? 'medium' : 'low'
  return score >= 9 ? 'critical' : score >= 7 ? 'high' : score >= 4 ? 'medium' : 'low'
}

/**
 * Whether some (vulnerability ID, affects ref) pair appears twice: a cheap look that builds no key strings and no
 * pairs.
 */
export function namesAPairTwice(vulnerabilities: readonly unknown[]): boolean {
  const refsById = new Map<string, string | Set<string>>()
  for (let v = 0; v < vulnerabilities.length; v++) {
    const vulnerability = vulnerabilities[v]
    if (!isObject(vulnerability)) continue
    const id = textOf(vulnerability.id) || `vulnerabilities[${v}]`
    const affects =
      Array.isArray(vulnerability.affects) && vulnerability.affects.length ? vulnerability.affects : [undefined]
    for (let a = 0; a < affects.length; a++) {
      const affect = affects[a]
      const ref = isObject(affect) ? textOf(affect.ref) : ''
      const seen = refsById.get(id)
      if (seen === undefined) refsById.set(id, ref)
      else if (seen === ref || (typeof seen !== 'string' && seen.has(ref))) return true
      else if (typeof seen === 'string') refsById.set(id, new Set([seen, ref]))
      else seen.add(ref)
    }
  }
  return false
}

/** A vulnerability's `analysis` (CycloneDX 1.4 to 1.7), or undefined when it states none. */
export function analysisOf(value: unknown): Analysis | undefined {
  if (!isObject(value)) return undefined
  const state = textOf(value.state).toLowerCase()
  if (!state) return undefined
  const justification = textOf(value.justification)
  const detail = textOf(value.detail)
  return { state, ...(justification ? { justification } : {}), ...(detail ? { detail } : {}) }
}

/**
 * Two statements' analyses of one pair as one: the one that states something, the same one twice, or, when they
 * disagree on whether the finding stands, `conflicting`, which suppresses nothing (the stricter reading, as
 * mergeFix takes for fixes; a producer that means one of them should not write both).
 */
export function mergeAnalysis(seen: Analysis | undefined, next: Analysis | undefined): Analysis | undefined {
  if (!seen || !next) return seen ?? next
  if (SUPPRESSING_TRIAGE_STATES.has(seen.state) === SUPPRESSING_TRIAGE_STATES.has(next.state)) return seen
  return { state: 'conflicting', detail: `the document says both ${seen.state} and ${next.state}` }
}

/**
 * One (component, vulnerability) pair while the document is read: statements about the same pair are merged before it
 * is judged.
 */
export interface Pair extends RatingTally {
  analysis?: Analysis
  readonly id: string
  /** The `affects` ref as written; empty for the document's subject. */
  readonly ref: string
  kevRated: boolean
  readonly packageName: string
  readonly packageVersion: string
  readonly purl: string
  fix: FixState
}

/**
 * A scanner's CycloneDX (or a VEX), pair by pair: a finding is a (component, vulnerability) pair through
 * `affects`; a vulnerability without `affects` is about the document's subject (metadata.component).
 * Statements that name the same pair again (VEX files do) are merged: the worst severity and score, and the
 * fix that lets least through. Every rating with a severity counts; a CVSS rating without one takes the
 * severity of its score, or of its vector's base score; EPSS and other ratings without either set nothing.
 * Only CVSS ratings give a score. The fix follows the producer's rule (fixOf).
 */
export function walkCycloneDx(bom: Record<string, unknown>, judge: JudgeFinding, cvss: CvssScorer | undefined): void {
  const components = new Map<string, { name: string; version: string; purl: string }>()
  // Components nest (assemblies, a jar in a jar): every level's bom-ref names a package. The document's subject
  // has one too, which Dependency-Track's VEX export names in `affects`.
  const subject = subjectComponent(bom)
  const pending: Array<{ list: readonly unknown[]; path: string }> = [
    { list: [subject], path: 'metadata.component' },
    { list: listAt(SCAN_DOCUMENT, bom, 'components', ''), path: 'components' },
  ]
  for (let next = pending.pop(); next; next = pending.pop()) {
    for (let c = 0; c < next.list.length; c++) {
      const component = next.list[c]
      if (!isObject(component)) throw notAnObject(SCAN_DOCUMENT, component, `${next.path}[${c}]`)
      if (typeof component['bom-ref'] === 'string')
        components.set(component['bom-ref'], {
          name: textOf(component.name),
          version: textOf(component.version),
          purl: textOf(component.purl),
        })
      if (component.components !== undefined)
        pending.push({
          list: listAt(SCAN_DOCUMENT, component, 'components', `${next.path}[${c}].`),
          path: `${next.path}[${c}].components`,
        })
    }
  }
  const subjectName = textOf(subject.name) || textOf(subject.purl) || '(the scanned subject)'
  const subjectVersion = textOf(subject.version)
  const subjectPurl = textOf(subject.purl)
  const producer = producerOf(bom)
  const noFixes: ReadonlyMap<string, string> = new Map()
  const vulnerabilities = listAt(SCAN_DOCUMENT, bom, 'vulnerabilities', '')
  // Only a document that names a pair twice (a VEX) pays for merging: pairs by ID, then by ref once an ID names a
  // second ref.
  const merging = namesAPairTwice(vulnerabilities)
  const pairs = new Map<string, Pair | Map<string, Pair>>()
  // The hot loop of a 50 MB scan: plain loops, and error paths (with their strings) built only when something is wrong.
  const tally = newTally()
  for (let v = 0; v < vulnerabilities.length; v++) {
    const vulnerability = vulnerabilities[v]
    if (!isObject(vulnerability)) throw notAnObject(SCAN_DOCUMENT, vulnerability, `vulnerabilities[${v}]`)
    const ratings = Array.isArray(vulnerability.ratings)
      ? vulnerability.ratings
      : listAt(SCAN_DOCUMENT, vulnerability, 'ratings', `vulnerabilities[${v}].`)
    resetTally(tally)
    let kevRated = false
    for (let r = 0; r < ratings.length; r++) {
      const rating = ratings[r]
      if (!isObject(rating)) throw notAnObject(SCAN_DOCUMENT, rating, `vulnerabilities[${v}].ratings[${r}]`)
      const method = typeof rating.method === 'string' ? rating.method : undefined
      const isCvss = method !== undefined && CVSS_METHODS.has(method)
      // Grype writes CISA's KEV listing as a rating of its own (source "CISA KEV Catalog").
      if (
        method === 'other' &&
        isObject(rating.source) &&
        typeof rating.source.name === 'string' &&
        /\bKEV\b/i.test(rating.source.name)
      )
        kevRated = true
      let ratingSeverity = normaliseSeverity(rating.severity)
      let ratingScore = typeof rating.score === 'number' && rating.score > 0 && isCvss ? rating.score : null
      // No severity stated: a CVSS score says it, or the vector's base score (osv-scanner and others write only one of
      // them).
      if (ratingSeverity === 'unknown' && ratingScore !== null && !statesSeverity(rating))
        ratingSeverity = severityOfScore(ratingScore, method === 'CVSSv2' ? 2 : 3)
      else if (ratingSeverity === 'unknown' && onlyVector(rating)) {
        if (!cvss) throw new Error('the CVSS calculator was not loaded for a rating with only a vector: this is a bug')
        const base = cvss(rating.vector as string)
        if (base) {
          ratingSeverity = severityOfScore(base.score, base.version)
          if (base.score > 0) ratingScore = base.score
        }
      }
      // EPSS and the like: no severity to count
      if (rating.severity === undefined && ratingSeverity === 'unknown') continue
      addRating(tally, ratingSeverity, ratingScore)
    }
    const id = textOf(vulnerability.id) || `vulnerabilities[${v}]`
    const analysis = analysisOf(vulnerability.analysis)
    const recommended = producer === 'trivy' ? fixesFromRecommendation(vulnerability.recommendation) : noFixes
    const affects = Array.isArray(vulnerability.affects)
      ? vulnerability.affects
      : listAt(SCAN_DOCUMENT, vulnerability, 'affects', `vulnerabilities[${v}].`)
    // `affects` is optional: without it the vulnerability is about the document's subject.
    for (let a = 0; a < Math.max(affects.length, 1); a++) {
      const affect = affects.length ? affects[a] : undefined
      if (affects.length && !isObject(affect))
        throw notAnObject(SCAN_DOCUMENT, affect, `vulnerabilities[${v}].affects[${a}]`)
      const ref = affect ? textOf((affect as Record<string, unknown>).ref) : ''
      const component = ref ? components.get(ref) : undefined
      const packageName = component?.name || ref || subjectName
      const packageVersion = component ? component.version : ref ? '' : subjectVersion
      const purl = component ? component.purl : ref.startsWith('pkg:') ? ref : ref ? '' : subjectPurl
      const fix = fixOf(
        producer,
        vulnerability,
        recommended,
        affect as Record<string, unknown> | undefined,
        packageName,
      )
      if (!merging) {
        judge(
          id,
          tally.severity,
          tally.score,
          packageName,
          packageVersion,
          fix,
          kevRated,
          tally.severities,
          analysis,
          purl,
        )
        continue
      }
      const entry = pairs.get(id)
      let seen = entry instanceof Map ? entry.get(ref) : entry
      if (seen && seen.ref !== ref) {
        pairs.set(id, new Map([[seen.ref, seen]]))
        seen = undefined
      }
      if (!seen) {
        const pair: Pair = {
          id,
          ref,
          ...tally,
          kevRated,
          packageName,
          packageVersion,
          purl,
          fix,
          ...(analysis ? { analysis } : {}),
        }
        const byRef = pairs.get(id)
        if (byRef instanceof Map) byRef.set(ref, pair)
        else pairs.set(id, pair)
        continue
      }
      mergeTally(seen, tally)
      const merged = mergeAnalysis(seen.analysis, analysis)
      if (merged) seen.analysis = merged
      seen.kevRated ||= kevRated
      seen.fix = mergeFix(seen.fix, fix)
    }
  }
  const judgePair = (pair: Pair) =>
    judge(
      pair.id,
      pair.severity,
      pair.score,
      pair.packageName,
      pair.packageVersion,
      pair.fix,
      pair.kevRated,
      pair.severities,
      pair.analysis,
      pair.purl,
    )
  for (const entry of pairs.values()) {
    if (entry instanceof Map) entry.forEach(judgePair)
    else judgePair(entry)
  }
}
