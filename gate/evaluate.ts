import {
  CVSS_METHODS,
  NO_KEV_DATES,
  UNKNOWN_FIX,
  bomsOf,
  digestOfBom,
  walkCycloneDx,
  unreadCycloneDxVersion,
} from './cyclonedx.ts'
import type { CvssScorer } from './cyclonedx.ts'
import { DATE_RE, parseExpiry, parseInstant } from './input.ts'
import {
  IMAGE_REPORT,
  SCAN_DOCUMENT,
  describeJson,
  isObject,
  listAt,
  malformed,
  notAnObject,
  objectAt,
  textOf,
} from './json.ts'
import { cut, escapeControls } from './safe-text.ts'
import {
  addRating,
  EXPIRY_WARNING_DAYS,
  isAtOrAbove,
  MAX_REPORTED_FINDINGS,
  newTally,
  normaliseSeverity,
  NoVerdictError,
  resetTally,
  SEVERITY_RANK,
  SUPPRESSING_TRIAGE_STATES,
  SUPPRESSING_VEX_STATUSES,
  UsageError,
} from './vocabulary.ts'
import type {
  Analysis,
  Evaluation,
  Exemption,
  Finding,
  Gate,
  Judged,
  JudgeFinding,
  KnownExploited,
  PackageMatch,
  Policy,
  Rule,
  ScanPolicyImport,
  Severity,
  SuppressedFinding,
  TriageDecision,
  Warning,
} from './vocabulary.ts'

// ---------------------------------------------------------------------------------------------
// Pure functions: evaluation

export function basePolicy(gate: Gate, now = Date.now()): Policy {
  return { gate, unknownAs: 'ignore', exemptions: [], triage: [], now }
}

/** Which rule, if any, makes a finding of this severity and score block. */
export function blockingRule(severity: Severity, score: number | null, policy: Policy): Rule | undefined {
  if (isAtOrAbove(severity, policy.gate)) return 'severity'
  if (severity === 'unknown' && policy.unknownAs !== 'ignore' && isAtOrAbove(policy.unknownAs, policy.gate))
    return 'unknown-as'
  if (policy.failOnScore !== undefined && score !== null && score >= policy.failOnScore) return 'score'
  return undefined
}

export function byLowerCaseId<T extends { readonly id: string }>(entries: readonly T[]): Map<string, T[]> {
  const map = new Map<string, T[]>()
  for (const entry of entries) {
    const key = entry.id.toLowerCase()
    map.get(key)?.push(entry) ?? map.set(key, [entry])
  }
  return map
}

export function findMatch<T extends { readonly package?: PackageMatch }>(
  byId: Map<string, T[]>,
  id: string,
  name: string,
  version: string,
): T | undefined {
  return byId
    .get(id.toLowerCase())
    ?.find(
      (entry) =>
        !entry.package ||
        (entry.package.name === name && (!entry.package.version || entry.package.version === version)),
    )
}

/**
 * The verdict on one Image document (`GET /api/v1/images/{digest}`). A vulnerability's severity is the
 * highest of its ratings; a finding blocks when that is at or above the gate (or --unknown-as or
 * --fail-on-score say so), unless an exemption or the store's triage suppresses it. Throws
 * NoVerdictError('MALFORMED_RESPONSE') when the document is not an Image of the expected shape.
 */
export function evaluate(
  document: unknown,
  policyOrGate: Policy | Gate,
  expectedDigest?: string,
  cvss?: CvssScorer,
): Evaluation {
  const policy = typeof policyOrGate === 'string' ? basePolicy(policyOrGate) : policyOrGate
  const unread = unreadCycloneDxVersion(document)
  if (unread)
    throw malformed(
      SCAN_DOCUMENT,
      `its specVersion is ${unread}: the gate reads CycloneDX 1.4 to 1.7, so it cannot account for its vulnerabilities`,
    )
  const boms = bomsOf(document)
  if (boms) {
    const judge = createJudge(policy)
    for (const { name, bom } of boms) {
      const named = digestOfBom(bom)
      if (expectedDigest && named && named !== expectedDigest)
        throw digestMismatch(name === SCAN_DOCUMENT ? 'it' : name, named, expectedDigest)
      walkCycloneDx(bom, judge.judge, cvss)
    }
    return judge.evaluation()
  }
  const image = objectAt(IMAGE_REPORT, document, 'the document')
  if (typeof image.Digest !== 'string' && !('Packages' in image)) {
    throw malformed(IMAGE_REPORT, 'it has neither Digest nor Packages, so it is not an Image')
  }
  if (expectedDigest) {
    // Fetched for a digest: the body must say which image it describes, or the check would be skipped silently.
    if (image.Digest === undefined || image.Digest === null)
      throw malformed(IMAGE_REPORT, `Digest is missing, so it cannot be checked against ${expectedDigest}`)
    if (typeof image.Digest !== 'string')
      throw malformed(
        IMAGE_REPORT,
        `Digest is ${describeJson(image.Digest)}, expected the image's digest (${expectedDigest})`,
      )
    if (image.Digest.trim().toLowerCase() !== expectedDigest)
      throw digestMismatch(IMAGE_REPORT, image.Digest.trim(), expectedDigest)
  }
  const judge = createJudge(policy)
  walkStoreImage(image, judge.judge)
  return judge.evaluation()
}

/** A document about another image than the one judged: not malformed, but the wrong scan. */
export function digestMismatch(document: string, named: string, expected: string): NoVerdictError {
  return new NoVerdictError(
    'DIGEST_MISMATCH',
    `${document} describes ${cut(escapeControls(named), 80)}, not ${expected}: it is the scan of another image (the ` +
      `digests differ)`,
  )
}

/**
 * CISA's Known Exploited Vulnerabilities catalog, as published: the entries by upper-case CVE ID, and when it was
 * released.
 */
export interface KevCatalog {
  readonly entries: ReadonlyMap<string, KnownExploited>
  readonly version: string
  /** dateReleased, ms since the epoch. */
  readonly released: number
}

/** A catalog older than this is warned about: CISA adds entries every few days. */
export const KEV_MAX_AGE_DAYS = 30

/**
 * The catalog's JSON (`{catalogVersion, dateReleased, vulnerabilities: [{cveID, dateAdded, dueDate,
 * knownRansomwareCampaignUse}]}`), checked.
 */
export function kevCatalogFrom(document: unknown, origin: string): KevCatalog {
  const fail = (problem: string) =>
    new UsageError(
      'KEV',
      `${origin} is not CISA's KEV catalog: ${problem} (download known_exploited_vulnerabilities.json from cisa.gov)`,
    )
  if (!isObject(document) || !Array.isArray(document.vulnerabilities)) throw fail('it has no "vulnerabilities" list')
  const released =
    parseInstant(textOf(document.dateReleased)) ?? parseExpiry(textOf(document.dateReleased).slice(0, 10))
  if (released === undefined)
    throw fail(`"dateReleased" ${JSON.stringify(cut(textOf(document.dateReleased), 40))} is not a date`)
  const entries = new Map<string, KnownExploited>()
  document.vulnerabilities.forEach((entry: unknown, index: number) => {
    if (!isObject(entry) || typeof entry.cveID !== 'string' || !/^CVE-\d{4}-\d{4,}$/i.test(entry.cveID.trim()))
      throw fail(`vulnerabilities[${index}] has no cveID of the form CVE-YYYY-NNNN`)
    const date = (key: string) =>
      typeof entry[key] === 'string' && DATE_RE.test(entry[key] as string) ? { [key]: entry[key] as string } : {}
    const ransomware =
      typeof entry.knownRansomwareCampaignUse === 'string' && entry.knownRansomwareCampaignUse
        ? { ransomware: entry.knownRansomwareCampaignUse }
        : {}
    entries.set(entry.cveID.trim().toUpperCase(), { ...date('dateAdded'), ...date('dueDate'), ...ransomware })
  })
  return { entries, version: textOf(document.catalogVersion) || 'unversioned', released }
}

/**
 * "known exploited since 2021-12-10 (due 2021-12-24)", or "known exploited (a scanner's KEV rating)" without the
 * catalog's dates.
 */
export function describeKev(kev: KnownExploited): string {
  if (!kev.dateAdded) return "known exploited (a scanner's KEV rating)"
  const due = kev.dueDate ? ` (due ${kev.dueDate})` : ''
  const ransomware = kev.ransomware === 'Known' ? ', used by ransomware' : ''
  return `known exploited since ${kev.dateAdded}${due}${ransomware}`
}

/** The running image's findings for --baseline: (lower-case ID, package name) to the worst severity seen. */
export function baselineFrom(document: unknown, cvss?: CvssScorer): Map<string, Severity> {
  const baseline = new Map<string, Severity>()
  const record: JudgeFinding = (id, severity, _score, packageName) => {
    const key = `${id.toLowerCase()}\u0000${packageName}`
    const seen = baseline.get(key)
    if (seen === undefined || SEVERITY_RANK[severity] > SEVERITY_RANK[seen]) baseline.set(key, severity)
  }
  const boms = bomsOf(document)
  if (boms) for (const { bom } of boms) walkCycloneDx(bom, record, cvss)
  else walkStoreImage(objectAt(IMAGE_REPORT, document, 'the document'), record)
  return baseline
}

/**
 * The rules, applied one finding at a time by whichever reader walks the document (the store's Image, a
 * scanner's CycloneDX), and summed up at the end: counts per unique ID at its worst, what blocks, what an
 * exemption, the store's triage or --only-fixed suppresses, and the exemptions to review.
 */
/** The scan's own analysis as a triage decision, when --triage honours it and its state suppresses. */
function documentDecision(
  policy: Policy,
  analysis: Analysis | undefined,
): Pick<TriageDecision, 'state' | 'justification'> | undefined {
  if (!policy.documentTriage || !analysis || !SUPPRESSING_TRIAGE_STATES.has(analysis.state)) return undefined
  const why = [analysis.justification, analysis.detail].filter(Boolean).join(': ')
  return { state: analysis.state, ...(why ? { justification: why } : {}) }
}

/**
 * The finding with its package's purl, which travels with what a VEX statement or a suppression speaks of (for
 * --print-vex): built only then, not for each of tens of thousands of blocking findings.
 */
const withPurl = (finding: Finding, purl: string): Finding => (purl ? { ...finding, purl } : finding)

export function createJudge(policy: Policy) {
  const active = policy.exemptions.filter((exemption) => exemption.expiresAt >= policy.now)
  const exemptionsById = byLowerCaseId(active)
  const triageById = byLowerCaseId(policy.triage.filter((decision) => SUPPRESSING_TRIAGE_STATES.has(decision.state)))
  const matchedExemptions = new Set<Exemption>()
  const kevNotAccepted = new Set<Exemption>()
  const vexNotAccepted: Finding[] = []
  const worstById = new Map<string, Severity>()
  const kevIds = new Set<string>()
  const blocking: Finding[] = []
  const suppressed: SuppressedFinding[] = []
  const warnings: Warning[] = []
  const passing: Judged[] = []
  const warnAt = policy.warnAt && policy.warnAt !== 'none' ? policy.warnAt : undefined
  let findings = 0
  let passingCount = 0
  let fixUnknown = 0
  const judge: JudgeFinding = (
    id,
    severity,
    score,
    packageName,
    packageVersion,
    fix,
    kevRated,
    severities,
    analysis,
    purl = '',
  ) => {
    const seen = worstById.get(id)
    if (seen === undefined || SEVERITY_RANK[severity] > SEVERITY_RANK[seen]) worstById.set(id, severity)
    findings++
    if (fix.state === 'unknown') fixUnknown++
    const exemption = exemptionsById.size ? findMatch(exemptionsById, id, packageName, packageVersion) : undefined
    if (exemption) matchedExemptions.add(exemption)
    const kev = policy.kev?.get(id.toUpperCase()) ?? (kevRated ? NO_KEV_DATES : undefined)
    if (kev) kevIds.add(id)
    const rule = blockingRule(severity, score, policy) ?? (kev ? 'kev' : undefined)
    if (!rule) {
      if (warnAt && isAtOrAbove(severity, warnAt))
        warnings.push({
          id,
          severity,
          score,
          package: packageName,
          version: packageVersion,
          rule: 'warn-at',
          fix,
          warnedBy: 'warn-at',
        })
      // Every finding is accounted for in the report: what passes is listed too (the first ones, in the document's
      // order).
      else if (passingCount++ < MAX_REPORTED_FINDINGS)
        passing.push(
          kev
            ? { id, severity, score, package: packageName, version: packageVersion, fix, kev }
            : { id, severity, score, package: packageName, version: packageVersion, fix },
        )
      return
    }
    // Two literal shapes, no spread: this runs for each of tens of thousands of blocking findings.
    const finding: Finding = kev
      ? { id, severity, score, package: packageName, version: packageVersion, rule, fix, kev }
      : { id, severity, score, package: packageName, version: packageVersion, rule, fix }
    // A known-exploited finding yields only to an exemption that says `kev: accepted`: not to triage, not to
    // --only-fixed.
    const exempted = exemption && (!kev || exemption.acceptsKev) ? exemption : undefined
    if (exemption && !exempted) kevNotAccepted.add(exemption)
    // --vex: the latest statement about the finding. Suppressing ones yield to KEV unless --vex-accepts-kev; the others
    // are shown beside the finding.
    const vex = exempted ? undefined : policy.vex?.(id, purl, packageName, packageVersion)
    const vexSuppresses = vex !== undefined && SUPPRESSING_VEX_STATUSES.has(vex.status)
    const vexApplies = vexSuppresses && (!kev || policy.vexAcceptsKev)
    if (vexSuppresses && !vexApplies) vexNotAccepted.push({ ...withPurl(finding, purl), vex: vex! })
    const triage =
      exempted || vexApplies || kev
        ? undefined
        : ((triageById.size ? findMatch(triageById, id, packageName, packageVersion) : undefined) ??
          documentDecision(policy, analysis))
    const inherited = policy.baseline?.get(`${id.toLowerCase()}\u0000${packageName}`)
    const noted: Finding = vex ? { ...withPurl(finding, purl), vex } : finding
    if (vexApplies) {
      suppressed.push({ ...withPurl(finding, purl), suppressedBy: { kind: 'vex', ...vex! } })
    } else if (exempted) {
      suppressed.push({
        ...withPurl(finding, purl),
        suppressedBy: {
          kind: 'exemption',
          reason: exempted.reason,
          expires: exempted.expires,
          ...(exempted.owner ? { owner: exempted.owner } : {}),
        },
      })
    } else if (triage) {
      suppressed.push({
        ...withPurl(finding, purl),
        suppressedBy: {
          kind: 'triage',
          state: triage.state,
          ...(triage.justification ? { justification: triage.justification } : {}),
        },
      })
    } else if (inherited !== undefined && SEVERITY_RANK[severity] <= SEVERITY_RANK[inherited]) {
      warnings.push({ ...noted, warnedBy: 'baseline' })
    } else if (policy.onlyFixed && fix.state === 'not-fixed' && !kev) {
      suppressed.push({ ...finding, suppressedBy: { kind: 'no-fix' } })
    } else {
      blocking.push(
        policy.scan1 && passedUnderScan1(severities, policy.scan1) ? { ...noted, passedUnderScan1: true } : noted,
      )
    }
  }
  const evaluation = (): Evaluation => {
    const counts: Record<Severity, number> = { critical: 0, high: 0, medium: 0, low: 0, unknown: 0 }
    for (const severity of worstById.values()) counts[severity]++
    worstFirst(blocking)
    worstFirst(suppressed)
    worstFirst(warnings)
    passing.sort(compareFindings)
    // "Within EXPIRY_WARNING_DAYS" counts whole days: an entry expiring on the last of them is warned about.
    const warnBefore = parseExpiry(new Date(policy.now + EXPIRY_WARNING_DAYS * 86_400_000).toISOString().slice(0, 10))!
    return {
      gate: policy.gate,
      counts,
      uniqueVulnerabilities: worstById.size,
      findings,
      blocking,
      suppressed,
      warnings,
      knownExploited: kevIds.size,
      kevNotAccepted: [...kevNotAccepted],
      vexNotAccepted,
      exemptions: {
        expired: policy.exemptions.filter((exemption) => exemption.expiresAt < policy.now),
        expiringSoon: active.filter((exemption) => exemption.expiresAt <= warnBefore),
        stale: active.filter((exemption) => !matchedExemptions.has(exemption)),
        permanent: active.filter((exemption) => exemption.permanent),
      },
      fixUnknown,
      passing,
      passingCount,
      passed: blocking.length === 0,
    }
  }
  return { judge, evaluation }
}

/**
 * The store's Image document, finding by finding: the hot loop of a 50 MB report, in plain loops, with error paths
 * built only when something is wrong.
 */
export function walkStoreImage(image: Record<string, unknown>, judge: JudgeFinding): void {
  const packages = listAt(IMAGE_REPORT, image, 'Packages', '')
  const tally = newTally()
  for (let p = 0; p < packages.length; p++) {
    const pkg = packages[p]
    if (!isObject(pkg)) throw notAnObject(IMAGE_REPORT, pkg, `Packages[${p}]`)
    const vulnerabilities = Array.isArray(pkg.Vulnerabilities)
      ? pkg.Vulnerabilities
      : listAt(IMAGE_REPORT, pkg, 'Vulnerabilities', `Packages[${p}].`)
    if (vulnerabilities.length === 0) continue
    const packageName = textOf(pkg.Name) || '(unnamed package)'
    const packageVersion = textOf(pkg.Version)
    for (let v = 0; v < vulnerabilities.length; v++) {
      const vulnerability = vulnerabilities[v]
      if (!isObject(vulnerability))
        throw notAnObject(IMAGE_REPORT, vulnerability, `Packages[${p}].Vulnerabilities[${v}]`)
      const ratings = Array.isArray(vulnerability.Ratings)
        ? vulnerability.Ratings
        : listAt(IMAGE_REPORT, vulnerability, 'Ratings', `Packages[${p}].Vulnerabilities[${v}].`)
      resetTally(tally)
      for (let r = 0; r < ratings.length; r++) {
        const rating = ratings[r]
        if (!isObject(rating))
          throw notAnObject(IMAGE_REPORT, rating, `Packages[${p}].Vulnerabilities[${v}].Ratings[${r}]`)
        const score = rating.Score
        addRating(
          tally,
          normaliseSeverity(rating.Severity),
          typeof score === 'number' && score > 0 && isStoreCvssRating(rating) ? score : null,
        )
      }
      const id =
        textOf(vulnerability.CVEID) ||
        (textOf(vulnerability.ID) ? `store-id:${textOf(vulnerability.ID)}` : `Packages[${p}].Vulnerabilities[${v}]`)
      judge(id, tally.severity, tally.score, packageName, packageVersion, UNKNOWN_FIX, false, tally.severities)
    }
  }
}

/**
 * The store's CVSS methods by MethodTypeID (its API documents 1 CVSSv2, 2 CVSSv3, 4 CVSSv31, 5 OWASP; anything else is
 * Unknown).
 */
export const STORE_CVSS_METHOD_IDS: ReadonlySet<unknown> = new Set([1, 2, 4])

/**
 * Whether a store rating's score is a CVSS score, the only kind --fail-on-score compares: by MethodTypeID,
 * or by a MethodType name as reports spell it; a rating that says neither is taken as CVSS, as before.
 */
export function isStoreCvssRating(rating: Record<string, unknown>): boolean {
  if (typeof rating.MethodTypeID === 'number') return STORE_CVSS_METHOD_IDS.has(rating.MethodTypeID)
  const name =
    typeof rating.MethodType === 'string'
      ? rating.MethodType
      : isObject(rating.MethodType) && typeof rating.MethodType.Name === 'string'
        ? rating.MethodType.Name
        : ''
  return name === '' || CVSS_METHODS.has(name)
}

/** Worst first: severity, then score, then ID and package for a stable order (code-unit order: fast, locale-free). */
export function compareFindings(a: Judged, b: Judged): number {
  return (
    SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] ||
    (b.score ?? -1) - (a.score ?? -1) ||
    compareText(a.id, b.id) ||
    compareText(a.package, b.package) ||
    compareText(a.version, b.version)
  )
}

/**
 * Sorts in place, worst first as compareFindings orders them. Nothing shows more than MAX_REPORTED_FINDINGS,
 * so past that only severity and score are ordered: findings are grouped by both, and only the groups that
 * reach into the shown part are ordered by ID and package; later groups keep the document's order. A
 * report of 50,000 blocking findings is then not sorted by string comparison as a whole.
 */
export function worstFirst<T extends Finding>(findings: T[]): void {
  if (findings.length <= MAX_REPORTED_FINDINGS) {
    findings.sort(compareFindings)
    return
  }
  const groups = new Map<Severity, Map<number, T[]>>()
  for (const finding of findings) {
    let byScore = groups.get(finding.severity)
    if (!byScore) groups.set(finding.severity, (byScore = new Map()))
    const score = finding.score ?? -1
    const group = byScore.get(score)
    if (group) group.push(finding)
    else byScore.set(score, [finding])
  }
  let placed = 0
  for (const severity of [...groups.keys()].sort((a, b) => SEVERITY_RANK[b] - SEVERITY_RANK[a])) {
    const byScore = groups.get(severity)!
    for (const score of [...byScore.keys()].sort((a, b) => b - a)) {
      const group = byScore.get(score)!
      if (placed < MAX_REPORTED_FINDINGS) group.sort(compareFindings)
      for (const finding of group) findings[placed++] = finding
    }
  }
}

export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** Whether Scan 1.0 passed a finding with ratings of these severities (a mask over SEVERITY_RANK). */
export function passedUnderScan1(
  severities: number,
  policy: Pick<ScanPolicyImport, 'template' | 'notAllowed'>,
): boolean {
  // Grype's template: safe when any one rating is outside the list. Trivy's: only when every one is.
  return policy.template === 'grype' ? (severities & ~policy.notAllowed) !== 0 : (severities & policy.notAllowed) === 0
}
