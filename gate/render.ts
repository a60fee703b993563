import type { SetAside } from './cyclonedx.ts'
import { describeKev } from './evaluate.ts'
import { isObject } from './json.ts'
import { cut, displayText, escapeControls, toJson, xml } from './safe-text.ts'
import {
  ENVIRONMENT,
  EXIT,
  EXIT_CODES,
  OPTION_GROUPS,
  EXPIRY_WARNING_DAYS,
  InterruptedError,
  MAX_LISTED_FINDINGS,
  MAX_REPORTED_FINDINGS,
  MAX_REPORT_FIELD,
  MAX_RESULT_ID,
  NAME,
  NoVerdictError,
  OPTIONS,
  SEVERITIES,
  TEXT_WIDTH,
  UsageError,
  VERSION,
  isAtOrAbove,
} from './vocabulary.ts'
import type {
  Evaluation,
  Exemption,
  Finding,
  FixState,
  Gate,
  ImageRef,
  Judged,
  Mode,
  OptionSpec,
  Policy,
  ReportFormat,
  Severity,
  SuppressedFinding,
  Suppression,
  VexVerdict,
  Warning,
} from './vocabulary.ts'

// ---------------------------------------------------------------------------------------------
// Pure functions: rendering

export interface RenderOptions {
  readonly color: boolean
}

export const ANSI = { red: '\x1b[31m', green: '\x1b[32m', yellow: '\x1b[33m', bold: '\x1b[1m', reset: '\x1b[0m' }

export function painter(color: boolean) {
  return (style: keyof typeof ANSI, value: string) => (color ? `${ANSI[style]}${value}${ANSI.reset}` : value)
}

export function describeGate(gate: Gate): string {
  if (gate === 'none') return 'none (no policy enforced)'
  const levels = SEVERITIES.filter((severity) => isAtOrAbove(severity, gate))
  return `${gate} (fails on ${levels.join(' or ')})`
}

/** Whose triage --triage honours in this run: the store's records, or the scan document's own analysis. */
export type TriageSource = false | 'store' | 'document'

/** The policy beyond the gate, one clause each, for the summary. */
export function describePolicy(policy: Policy, triage: TriageSource): string[] {
  return [
    ...(policy.failOnScore === undefined ? [] : [`also fails on a score of ${policy.failOnScore} or more`]),
    ...(policy.unknownAs === 'ignore' ? [] : [`unknown severity counts as ${policy.unknownAs}`]),
    ...(policy.onlyFixed ? ['only findings with a fix block'] : []),
    ...(policy.kev
      ? [`known-exploited CVEs block (${plural(policy.kev.size, 'catalog entry', 'catalog entries')})`]
      : []),
    ...(policy.baseline ? ['only findings new since the baseline, or worse, block'] : []),
    ...(policy.warnAt && policy.warnAt !== 'none' ? [`warns from ${policy.warnAt} up`] : []),
    ...(policy.scan1 ? [`from ScanPolicy ${policy.scan1.name}`] : []),
    ...(policy.exemptions.length ? [plural(policy.exemptions.length, 'exemption')] : []),
    ...(triage === 'store' ? [`store triage (${plural(policy.triage.length, 'record')})`] : []),
    ...(triage === 'document' ? ["the scan's own triage (its CycloneDX analysis)"] : []),
    ...(policy.vex
      ? [
          `VEX (${plural(policy.vexStatements ?? 0, 'statement')}` +
            `${policy.vexAcceptsKev ? ', applied to known-exploited findings too' : ''})`,
        ]
      : []),
  ]
}

/** `name@version`, or the name alone when the version is unknown. */
export function packageLabel(name: string, version?: string): string {
  return version ? `${name}@${version}` : name
}

export function findingRow(finding: Finding, idWidth: number): string {
  const score = finding.score === null ? '   -' : finding.score.toFixed(1).padStart(4)
  const where = displayText(packageLabel(finding.package, finding.version), TEXT_WIDTH.package)
  const why =
    finding.rule === 'score'
      ? '  (by score)'
      : finding.rule === 'unknown-as'
        ? '  (unknown counted per --unknown-as)'
        : ''
  const fix = finding.fix.state === 'fixed' ? `  fixed in ${displayText(finding.fix.version, TEXT_WIDTH.id)}` : ''
  const kev = finding.kev ? `  ${describeKev(finding.kev)}` : ''
  return (
    `  ${finding.severity.toUpperCase().padEnd(8)}  ${score}  ` +
    `${displayText(finding.id, TEXT_WIDTH.id).padEnd(idWidth)}  ${where}${fix}${kev}${why}`
  )
}

/** `; fixed in 1.2.3`, `; no fix yet`, or nothing when the source does not say. */
export function describeFix(fix: FixState): string {
  return fix.state === 'fixed' ? `; fixed in ${fix.version}` : fix.state === 'not-fixed' ? '; no fix yet' : ''
}

/** What a --vex statement says of a finding, and where it says it. */
export function describeVex(vex: VexVerdict): string {
  const where = ` (${vex.source}${vex.author ? `, by ${vex.author}` : ''})`
  if (vex.status === 'conflicting') return `VEX conflicting, suppresses nothing: ${vex.detail ?? ''}`
  if (vex.status === 'affected') return `VEX affected: ${vex.action ?? 'no action statement'}${where}`
  if (vex.status === 'under_investigation') return `VEX under investigation${where}`
  const why = [vex.justification, vex.impact].filter(Boolean).join(': ')
  return `VEX ${vex.status}${why ? `: ${why}` : ''}${where}`
}

export function describeSuppression(suppression: Suppression): string {
  if (suppression.kind === 'vex') return describeVex(suppression)
  if (suppression.kind === 'triage')
    return `triage ${suppression.state}${suppression.justification ? `: ${suppression.justification}` : ''}`
  if (suppression.kind === 'no-fix') return 'no fix yet (--only-fixed)'
  return (
    `exempt until ${suppression.expires}${suppression.owner ? ` (${suppression.owner})` : ''}: ` +
    `${suppression.reason}`
  )
}

export function describeWarning(warning: Warning): string {
  return warning.warnedBy === 'baseline'
    ? 'inherited from the baseline (the running image has it too)'
    : `at or above --warn-at`
}

export function describeExemption(exemption: Exemption): string {
  const scope = exemption.package ? ` in ${packageLabel(exemption.package.name, exemption.package.version)}` : ''
  return `${exemption.id}${scope}${exemption.owner ? ` (${exemption.owner})` : ''}`
}

/**
 * The summary a developer reads when the pipeline turns red: counts, verdict, what to fix, and what was let
 * through. `image` is the image judged, or, for a document that names no digest, what it says it is the scan of.
 */
export function renderText(
  evaluation: Evaluation,
  image: ImageRef | string,
  options: RenderOptions & { policy?: Policy; triage?: TriageSource; setAside?: readonly SetAside[] },
): string {
  const paint = painter(options.color)
  const { counts, gate, blocking, suppressed, exemptions } = evaluation
  const policyClauses = options.policy ? describePolicy(options.policy, options.triage ?? false) : []
  const lines = [
    typeof image === 'string'
      ? `Scan of ${displayText(image, TEXT_WIDTH.note)} (names no image digest)`
      : `Image  ${image.reference}`,
    `Gate   ${describeGate(gate)}`,
  ]
  if (policyClauses.length) lines.push(`Policy ${displayText(policyClauses.join('; '), TEXT_WIDTH.note)}`)
  lines.push('')
  if (evaluation.findings === 0) {
    lines.push('No vulnerabilities reported for this image.')
  } else {
    const width = Math.max(...SEVERITIES.map((severity) => String(counts[severity]).length))
    const blockingSeverities = new Set(blocking.map((finding) => finding.severity))
    for (const severity of SEVERITIES) {
      const row = `  ${severity.padEnd(8)}  ${String(counts[severity]).padStart(width)}`
      lines.push(blockingSeverities.has(severity) ? paint('red', `${row}  blocking`) : row)
    }
    lines.push(
      `  ${plural(evaluation.uniqueVulnerabilities, 'unique vulnerability', 'unique vulnerabilities')} in ` +
        `${plural(evaluation.findings, 'finding')} (package, vulnerability pairs)`,
    )
  }
  const section = (title: string, rows: readonly Finding[], detail?: (finding: Finding) => string) => {
    if (rows.length === 0) return
    const listed = rows.slice(0, MAX_LISTED_FINDINGS)
    const idWidth = Math.max(...listed.map((finding) => displayText(finding.id, TEXT_WIDTH.id).length))
    lines.push('', title)
    for (const finding of listed) {
      const note = detail?.(finding)
      lines.push(`${findingRow(finding, idWidth)}${note ? `  ${displayText(note, TEXT_WIDTH.note)}` : ''}`)
    }
    if (rows.length > listed.length)
      lines.push(`  ... and ${rows.length - listed.length} more (--format json lists up to ${MAX_REPORTED_FINDINGS})`)
  }
  const vexNote = (finding: Finding) => (finding.vex ? describeVex(finding.vex) : '')
  section('Blocking findings, worst first:', blocking, vexNote)
  // Known-exploited findings an exemption or VEX lets through are listed first and apart: they are the riskiest thing
  // let through.
  const exemptedKev = suppressed.filter((finding) => finding.kev)
  if (exemptedKev.length) {
    lines.push(
      '',
      paint(
        'red',
        `Known exploited, yet suppressed (kev: accepted, --vex-accepts-kev): ${plural(exemptedKev.length, 'finding')}`,
      ),
    )
    section('Known-exploited findings suppressed:', exemptedKev, (finding) =>
      describeSuppression((finding as SuppressedFinding).suppressedBy),
    )
  }
  section(
    'Suppressed, would block otherwise:',
    exemptedKev.length ? suppressed.filter((finding) => !finding.kev) : suppressed,
    (finding) => describeSuppression((finding as SuppressedFinding).suppressedBy),
  )
  section('Warnings, do not block:', evaluation.warnings, (finding) =>
    [describeWarning(finding as Warning), vexNote(finding)].filter(Boolean).join('; '),
  )
  section('VEX not applied, known exploited (--vex-accepts-kev applies it):', evaluation.vexNotAccepted, vexNote)
  const scan1 = options.policy?.scan1
  const passedBefore = scan1 ? blocking.filter((finding) => finding.passedUnderScan1) : []
  if (scan1 && passedBefore.length) {
    const rule =
      scan1.template === 'grype'
        ? 'when any one of its ratings was outside notAllowedSeverities'
        : 'when none of its ratings was in notAllowedSeverities'
    section(
      `Blocked now, passed under Scan 1.0 (ScanPolicy ${displayText(scan1.name, TEXT_WIDTH.id)} passed a finding ` +
        `${rule}; the gate takes the highest rating):`,
      passedBefore,
    )
  }
  const notes = [
    ...exemptions.expired.map(
      (exemption) => `expired ${exemption.expires}, no longer applies: ${describeExemption(exemption)}`,
    ),
    ...exemptions.expiringSoon.map(
      (exemption) =>
        `expires ${exemption.expires}, within ${EXPIRY_WARNING_DAYS} days: ${describeExemption(exemption)}`,
    ),
    ...exemptions.stale.map((exemption) => `stale, matches nothing in this image: ${describeExemption(exemption)}`),
    ...evaluation.kevNotAccepted.map(
      (exemption) =>
        `not applied to a known-exploited finding (add kev: accepted to apply it): ${describeExemption(exemption)}`,
    ),
    ...exemptions.permanent.map(
      (exemption) => `no expiry (give it one: --scan-policy ... --print-exemptions): ${describeExemption(exemption)}`,
    ),
  ]
  if (notes.length)
    lines.push(
      '',
      'Exemptions to review:',
      ...notes.map((note) => paint('yellow', `  ${displayText(note, TEXT_WIDTH.note)}`)),
    )
  const setAside = options.setAside ?? []
  if (setAside.length) {
    lines.push('', 'Set aside, no vulnerabilities to judge:')
    for (const aside of setAside.slice(0, MAX_LISTED_FINDINGS))
      lines.push(`  ${displayText(aside.what, TEXT_WIDTH.package)}  ${displayText(aside.reason, TEXT_WIDTH.note)}`)
    if (setAside.length > MAX_LISTED_FINDINGS)
      lines.push(
        `  ... and ${setAside.length - MAX_LISTED_FINDINGS} more (--format json lists up to ${MAX_REPORTED_FINDINGS})`,
      )
  }
  if (options.policy?.onlyFixed && evaluation.fixUnknown) {
    lines.push(
      '',
      paint(
        'yellow',
        `--only-fixed: the source does not say whether ${plural(evaluation.fixUnknown, 'finding')} ` +
          `${evaluation.fixUnknown === 1 ? 'has' : 'have'} a fix (the Metadata Store, an older Grype, or another ` +
          `producer), so ${evaluation.fixUnknown === 1 ? 'it counts' : 'they count'} as fixable`,
      ),
    )
  }
  lines.push('')
  if (evaluation.passed) lines.push(paint('green', verdictSentence(evaluation)))
  else
    lines.push(
      `${paint('red', verdictSentence(evaluation))} Upgrade the packages above, or rebuild on a patched base image.`,
    )
  return `${lines.join('\n')}\n`
}

/** The verdict in one sentence, as the summary ends and the Tekton result `message` says it. */
export function verdictSentence(evaluation: Evaluation): string {
  const { gate, blocking, suppressed, warnings } = evaluation
  if (evaluation.passed) {
    const aside = [
      ...(suppressed.length ? [`${plural(suppressed.length, 'finding')} suppressed`] : []),
      ...(warnings.length ? [plural(warnings.length, 'warning')] : []),
    ]
    return `PASS: nothing blocks at gate ${gate}${aside.length ? ` (${aside.join(', ')})` : ''}.`
  }
  const ids = new Set(blocking.map((finding) => finding.id)).size
  return (
    `FAIL: ${plural(ids, 'vulnerability', 'vulnerabilities')} (${plural(blocking.length, 'finding')}) ` +
    `${ids === 1 ? 'blocks' : 'block'} at gate ${gate}.`
  )
}

export function plural(count: number, singular: string, pluralForm = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : pluralForm}`
}

export type Verdict = 'pass' | 'fail' | 'skipped' | 'error'

export interface JsonReport {
  readonly schemaVersion: 1
  readonly tool: { readonly name: string; readonly version: string }
  readonly image: ImageRef | null
  /** What the verdict is about: the image's reference, or the subject of a document that names no digest. */
  readonly subject: string | null
  readonly gate: Gate | null
  readonly mode: Mode
  readonly verdict: Verdict
  /** The process exit code: 0 in audit mode. */
  readonly exitCode: number
  /** What enforce mode exits with; equals exitCode there. */
  readonly enforcedExitCode: number
  readonly counts: Record<Severity, number> | null
  readonly uniqueVulnerabilities: number | null
  readonly findings: number | null
  readonly blocking: readonly Finding[]
  readonly suppressed: readonly SuppressedFinding[]
  readonly warnings: readonly Warning[]
  /** Findings judged that neither block, warn nor are suppressed. */
  readonly passing: readonly Judged[]
  /** What the input held that is no vulnerability to judge (a bundle's SBOM, imgpkg's metadata), each with why. */
  readonly setAside: readonly SetAside[]
  /** Unique known-exploited vulnerability IDs among all findings. */
  readonly knownExploited: number | null
  /**
   * Findings left out of `blocking`, `suppressed`, `warnings` and `passing` beyond the first MAX_REPORTED_FINDINGS of
   * each.
   */
  readonly omitted: {
    readonly blocking: number
    readonly suppressed: number
    readonly warnings: number
    readonly passing: number
  }
  readonly exemptions: Evaluation['exemptions'] | null
  readonly error: { readonly code: string; readonly message: string } | null
  /** Why the run ended as it did, in one word: the error's code, POLICY_VIOLATION, PASSED or GATE_NONE. */
  readonly reason: string
  /** The same in one sentence, as the log ends: the verdict line, or what failed and what to do. */
  readonly message: string
}

/**
 * Every string in a finding or exemption cut to MAX_REPORT_FIELD, so that a report stays proportional to what a reader
 * can use.
 */
export function bounded<T>(value: T): T {
  if (typeof value === 'string') return cut(value, MAX_REPORT_FIELD) as T
  if (Array.isArray(value)) return value.map(bounded) as T
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, bounded(item)])) as T
  return value
}

export const listed = <T>(items: readonly T[]): T[] => items.slice(0, MAX_REPORTED_FINDINGS).map(bounded)

/** How a run ended, before it is written anywhere. */
export interface Outcome {
  /** There whenever a verdict was reached. */
  readonly evaluation?: Evaluation
  /** Gate none: nothing was judged. */
  readonly skipped?: true
  /** What the input held besides vulnerabilities, left out with a reason. */
  readonly setAside?: readonly SetAside[]
  /**
   * Why there is no verdict, or why the verdict could not be recorded; `usage` when the configuration was wrong (exit
   * 2).
   */
  readonly error?: { readonly code: string; readonly message: string; readonly usage?: true }
}

export interface ExitDecision {
  /** What the process exits with. */
  readonly exitCode: number
  /** What enforce mode exits with; equals exitCode there. */
  readonly enforcedExitCode: number
}

/**
 * The one place an outcome becomes an exit code: an error means no verdict (3), a blocking finding a
 * violation (1), anything else a pass; audit mode reports the same and exits 0.
 */
export function decideExit(outcome: Outcome, mode: Mode): ExitDecision {
  // Audit mode never breaks a chain: a configuration error is reported, and exits 0 there too.
  const enforcedExitCode = outcome.error?.usage
    ? EXIT.USAGE
    : outcome.error
      ? EXIT.NO_VERDICT
      : outcome.evaluation && !outcome.evaluation.passed
        ? EXIT.VIOLATION
        : EXIT.PASS
  return { enforcedExitCode, exitCode: mode === 'audit' ? EXIT.PASS : enforcedExitCode }
}

/** The exit code an error carries: its own, or no verdict for anything unexpected (a bug). */
export function exitCodeFor(error: unknown): number {
  return error instanceof UsageError || error instanceof NoVerdictError || error instanceof InterruptedError
    ? error.exitCode
    : EXIT.NO_VERDICT
}

/** The machine report of one run, with the exit decision it was given. */
export function buildJsonReport(
  run: { readonly image: ImageRef | null; readonly subject?: string; readonly gate: Gate | null; readonly mode?: Mode },
  outcome: Outcome,
  decision = decideExit(outcome, run.mode ?? 'enforce'),
): JsonReport {
  const evaluation = outcome.evaluation ?? null
  const verdict: Verdict = evaluation ? (evaluation.passed ? 'pass' : 'fail') : outcome.skipped ? 'skipped' : 'error'
  const exemptions = evaluation?.exemptions
  return {
    schemaVersion: 1,
    tool: { name: NAME, version: VERSION },
    image: run.image,
    subject: run.image?.reference ?? (run.subject === undefined ? null : cut(run.subject, MAX_REPORT_FIELD)),
    gate: run.gate,
    mode: run.mode ?? 'enforce',
    verdict,
    exitCode: decision.exitCode,
    enforcedExitCode: decision.enforcedExitCode,
    counts: evaluation?.counts ?? null,
    uniqueVulnerabilities: evaluation?.uniqueVulnerabilities ?? null,
    findings: evaluation?.findings ?? null,
    blocking: listed(evaluation?.blocking ?? []),
    suppressed: listed(evaluation?.suppressed ?? []),
    warnings: listed(evaluation?.warnings ?? []),
    passing: listed(evaluation?.passing ?? []),
    setAside: listed(outcome.setAside ?? []),
    knownExploited: evaluation?.knownExploited ?? null,
    omitted: {
      blocking: Math.max(0, (evaluation?.blocking.length ?? 0) - MAX_REPORTED_FINDINGS),
      suppressed: Math.max(0, (evaluation?.suppressed.length ?? 0) - MAX_REPORTED_FINDINGS),
      warnings: Math.max(0, (evaluation?.warnings.length ?? 0) - MAX_REPORTED_FINDINGS),
      passing: Math.max(0, (evaluation?.passingCount ?? 0) - MAX_REPORTED_FINDINGS),
    },
    exemptions: exemptions
      ? {
          expired: listed(exemptions.expired),
          expiringSoon: listed(exemptions.expiringSoon),
          stale: listed(exemptions.stale),
          permanent: listed(exemptions.permanent),
        }
      : null,
    error: outcome.error
      ? { code: outcome.error.code, message: cut(outcome.error.message, 4 * MAX_REPORT_FIELD) }
      : null,
    reason: outcome.error
      ? outcome.error.code
      : evaluation
        ? evaluation.passed
          ? 'PASSED'
          : 'POLICY_VIOLATION'
        : 'GATE_NONE',
    message: `${decision.exitCode !== decision.enforcedExitCode ? 'AUDIT, not enforced: ' : ''}${
      outcome.error
        ? cut(`${outcome.error.usage ? '' : 'no verdict: '}${outcome.error.message}`, 4 * MAX_REPORT_FIELD)
        : evaluation
          ? verdictSentence(evaluation)
          : 'gate none: no policy enforced.'
    }`,
  }
}

export const SARIF_LEVEL: Record<Severity, 'error' | 'warning' | 'note'> = {
  critical: 'error',
  high: 'error',
  medium: 'warning',
  low: 'note',
  unknown: 'note',
}

/** A finding of a machine report: blocking, suppressed (with why) or a warning (with why). */
type ReportedFinding = Finding & { suppressedBy?: Suppression; warnedBy?: Warning['warnedBy'] }

/** A SARIF result's message: the finding, where, and what it means at this gate. */
function sarifMessage(finding: ReportedFinding, gate: JsonReport['gate']): string {
  const score = finding.score === null ? '' : `, score ${finding.score}`
  const meaning = finding.warnedBy
    ? `is a warning: ${describeWarning(finding as Warning)}`
    : `${finding.suppressedBy ? 'would block' : 'blocks'} at gate ${gate}`
  const kev = finding.kev ? `; ${describeKev(finding.kev)}` : ''
  const where = packageLabel(finding.package, finding.version)
  return `${finding.id} (${finding.severity}${score}) in ${where} ${meaning}${kev}`
}

/** A JUnit failure's message: the blocking finding, known exploitation, and its fix. */
function junitFailure(finding: Finding, gate: JsonReport['gate']): string {
  const kev = finding.kev ? `, ${describeKev(finding.kev)}` : ''
  return `${finding.id} (${finding.severity}) blocks at gate ${gate}${kev}${describeFix(finding.fix)}`
}

/** A JUnit warning's output: a warning passes, and JUnit has no outcome for it. */
function junitWarning(finding: Warning): string {
  return `WARNING: ${finding.id} (${finding.severity}) ${describeWarning(finding)}${describeFix(finding.fix)}`
}

/** SARIF 2.1.0: one rule per vulnerability ID, one result per blocking or suppressed finding. */
export function renderSarif(report: JsonReport): string {
  const findings: readonly ReportedFinding[] = [...report.blocking, ...report.suppressed, ...report.warnings]
  // Findings come worst first, so the first one of an ID describes its rule.
  const firstById = new Map<string, Finding>()
  for (const finding of findings) if (!firstById.has(finding.id)) firstById.set(finding.id, finding)
  const ruleIndex = new Map([...firstById.keys()].map((id, index) => [id, index]))
  const kevIds = new Set(findings.filter((finding) => finding.kev).map((finding) => finding.id))
  const artifact = report.image
    ? report.image.reference.split('@')[0] || report.image.digest
    : (report.subject ?? 'image')
  const sarif = {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: NAME,
            version: VERSION,
            informationUri: 'https://github.com/amr-policy-gate/amr-policy-gate',
            rules: [...firstById.values()].map(({ id, severity, score }) => ({
              id,
              shortDescription: { text: `${id} (${severity})` },
              ...(/^CVE-\d+-\d+$/i.test(id) ? { helpUri: `https://nvd.nist.gov/vuln/detail/${id.toUpperCase()}` } : {}),
              properties: {
                tags: ['security', 'vulnerability', ...(kevIds.has(id) ? ['known-exploited'] : [])],
                ...(score === null ? {} : { 'security-severity': score.toFixed(1) }),
              },
            })),
          },
        },
        invocations: [
          {
            executionSuccessful: report.verdict !== 'error',
            exitCode: report.exitCode,
            ...(report.error
              ? { toolExecutionNotifications: [{ level: 'error', message: { text: report.error.message } }] }
              : {}),
          },
        ],
        results: findings.map((finding) => ({
          ruleId: finding.id,
          ruleIndex: ruleIndex.get(finding.id),
          level: finding.warnedBy ? 'warning' : SARIF_LEVEL[finding.severity],
          message: {
            text: sarifMessage(finding, report.gate),
          },
          locations: [
            {
              physicalLocation: { artifactLocation: { uri: artifact } },
              logicalLocations: [{ name: packageLabel(finding.package, finding.version), kind: 'package' }],
            },
          ],
          properties: {
            fixState: finding.fix.state,
            ...(finding.fix.state === 'fixed' ? { fixedIn: finding.fix.version } : {}),
            ...(finding.kev ? { knownExploited: finding.kev } : {}),
            ...(finding.warnedBy ? { warning: finding.warnedBy } : {}),
          },
          ...(finding.suppressedBy
            ? {
                suppressions: [
                  { kind: 'external', status: 'accepted', justification: describeSuppression(finding.suppressedBy) },
                ],
              }
            : {}),
        })),
      },
    ],
  }
  return toJson(sarif)
}

/**
 * JUnit XML: one failing test case per blocking finding, suppressed ones skipped, an error when there is no verdict.
 */
export function renderJunit(report: JsonReport): string {
  const name = report.subject ?? 'image'
  const testCase = (title: string, outcome?: string) =>
    `    <testcase classname="${xml(name)}" ` +
    `name="${xml(title)}"${outcome ? `>\n      ${outcome}\n    </testcase>` : '/>'}`
  const findingTitle = (finding: Finding) => `${finding.id} in ${packageLabel(finding.package, finding.version)}`
  const cases = [
    ...report.blocking.map((finding) =>
      testCase(
        findingTitle(finding),
        `<failure type="${finding.severity}" message="${xml(junitFailure(finding, report.gate))}"/>`,
      ),
    ),
    ...report.suppressed.map((finding) =>
      testCase(findingTitle(finding), `<skipped message="${xml(describeSuppression(finding.suppressedBy))}"/>`),
    ),
    // A warning passes: JUnit has no warning outcome, so it says so in its output.
    ...report.warnings.map((finding) =>
      testCase(findingTitle(finding), `<system-out>${xml(junitWarning(finding))}</system-out>`),
    ),
  ]
  if (report.error)
    cases.push(testCase('verdict', `<error type="${xml(report.error.code)}" message="${xml(report.error.message)}"/>`))
  else if (report.blocking.length === 0) cases.push(testCase(`gate ${report.gate}: ${report.verdict}`))
  const failures = report.blocking.length
  const errors = report.error ? 1 : 0
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${NAME}" tests="${cases.length}" failures="${failures}" errors="${errors}">`,
    `  <testsuite name="${xml(`${NAME} ${name}`)}" tests="${cases.length}" failures="${failures}" errors="${errors}" ` +
      `skipped="${report.suppressed.length}">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n')
}

export function renderReport(report: JsonReport, format: ReportFormat): string {
  if (format === 'sarif') return renderSarif(report)
  if (format === 'junit') return renderJunit(report)
  return toJson(report)
}

/** What --help says of an option's values and default. */
export function describeValues(option: OptionSpec): string {
  const choices = option.choices ? `${option.choices.join(' | ')}: ` : ''
  const fallback = option.required
    ? ' (required)'
    : option.default || option.defaultText
      ? ` (default: ${option.default ?? option.defaultText})`
      : ''
  return `${choices}${option.help}${fallback}`
}

/** Words in lines of at most `width` columns, each after the first indented by `indent` (a word longer stays whole). */
export function wrap(text: string, width: number, indent: number): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ').filter(Boolean)) {
    const room = width - (lines.length === 0 ? 0 : indent)
    if (line && line.length + 1 + word.length > room) {
      lines.push(line)
      line = word
    } else {
      line = line ? `${line} ${word}` : word
    }
  }
  lines.push(line)
  return lines.map((text, index) => (index === 0 ? text : `${' '.repeat(indent)}${text}`))
}

/** `  NAME  description` rows: the description column starts after the longest name that fits, wrapped under itself. */
function helpRows(
  rows: ReadonlyArray<readonly [name: string, text: string]>,
  width: number,
  names = rows.map(([name]) => name),
): string[] {
  const column = Math.min(Math.max(...names.map((name) => name.length)) + 4, 32)
  return rows.flatMap(([name, text]) => {
    const head = `  ${name}`
    const lines = wrap(text, width - column, 0).map((line) => `${' '.repeat(column)}${line}`)
    if (head.length + 2 > column) return [head, ...lines]
    return [`${head.padEnd(column)}${lines[0]!.trimStart()}`, ...lines.slice(1)]
  })
}

/** --help, wrapped to the terminal (80 columns when not one): what it is, usage, options by group, exit codes. */
export function renderHelp(width = 80): string {
  const byFlag = new Map(OPTIONS.map((option) => [option.flag, option]))
  const optionRow = (flag: string): [string, string] => {
    const option = byFlag.get(flag as OptionSpec['flag'])!
    // A no-break space keeps "[env NAME]" on one line; wrap() splits only at plain spaces.
    return [usageOf(option), `${describeValues(option)}${option.env ? ` [env\u00a0${option.env}]` : ''}`]
  }
  const usageOf = (option: OptionSpec) => (option.value ? `${option.flag} ${option.value}` : option.flag)
  const names = OPTIONS.map(usageOf)
  const paragraph = (text: string) => wrap(text, width, 0)
  return [
    `${NAME} ${VERSION}`,
    '',
    ...paragraph(
      "Judges the vulnerabilities of an image's scan against a gate and fails (exit 1) when any is at or above it; a " +
        "vulnerability's severity is the highest of its ratings. The scan comes from the Tanzu Metadata Store " +
        '(waited ' +
        "for until it holds the image's digest), the image's ImageVulnerabilityScan (--scan-result auto), a scan " +
        'result ' +
        'in a registry (--scan-result REF) or a saved file (--input). Whatever the gate cannot account for ends in ' +
        'no ' +
        'verdict (exit 3), never a pass.',
    ),
    '',
    'Usage:',
    `  ${NAME} [options] <image>`,
    ...wrap(
      '<image> is [registry[:port]/]repo[:tag]@sha256:<64 hex> or sha256:<64 hex>; with --input or --scan-result REF ' +
        'it may be left out when the document names the digest it scanned. Each option is also read from the ' +
        'environment variable shown; a flag wins, and may be given once.',
      width - 2,
      0,
    ).map((line) => `  ${line}`),
    ...OPTION_GROUPS.flatMap(([title, flags]) => ['', `${title}:`, ...helpRows(flags.map(optionRow), width, names)]),
    '',
    'Environment:',
    ...helpRows(
      ENVIRONMENT.map(({ name, help }) => [name, help]),
      width,
    ),
    '',
    'Examples:',
    ...[
      `GATE=high METADATA_STORE_URL=metadata-store.example.com ACCESS_TOKEN=... ${NAME} ` +
        `registry.example.com/app@sha256:<digest>`,
      `${NAME} --gate critical --url https://localhost:8443 --token-file token --ca-cert ca.crt sha256:<digest>`,
      `${NAME} --gate high --input scan.cdx.json --format json`,
    ].flatMap((example) => wrap(example, width - 2, 4).map((line) => `  ${line}`)),
    '',
    'Exit codes:',
    ...helpRows(
      EXIT_CODES.map(([code, meaning]) => [String(code), meaning]),
      width,
    ),
    '',
  ]
    .join('\n')
    .replaceAll('\u00a0', ' ')
}

export const code = (value: string) => `\`${value}\``

/** docs/usage.md's options table, row by row: the docs test holds the page to it. */
export function renderOptionsTable(): string[] {
  return [
    '| option | env | default | meaning |',
    '|---|---|---|---|',
    ...OPTIONS.map((option) => {
      const fallback = option.required
        ? '(required)'
        : option.default
          ? code(option.default)
          : (option.defaultText ?? '')
      const choices = option.choices ? `${option.choices.map(code).join(', ')}: ` : ''
      const help = `${option.help.charAt(0).toUpperCase()}${option.help.slice(1)}.`
      const meaning = `${choices}${help}${option.more ? ` ${option.more}` : ''}`
      return (
        `| ${code(option.value ? `${option.flag} ${option.value}` : option.flag)} | ` +
        `${option.env ? code(option.env) : ''} | ${fallback} | ${meaning} |`
      )
    }),
    ...ENVIRONMENT.map(({ name, help }) => `| | ${code(name)} | | ${help.charAt(0).toUpperCase()}${help.slice(1)}. |`),
  ]
}

/** docs/usage.md's exit-code table, row by row. */
export function renderExitCodeTable(): string[] {
  return ['| code | meaning |', '|---|---|', ...EXIT_CODES.map(([exit, meaning]) => `| ${exit} | ${meaning} |`)]
}

/** Listed in the `blocking` Tekton result at most; the whole set of results stays far below Tekton's 4 KB. */
export const MAX_RESULT_IDS = 10
/** Tekton results: the `message` result at most this many bytes (the 4 KB of all results together stay far off). */
export const MAX_RESULT_MESSAGE_BYTES = 512

/** One ID of the comma-separated `blocking` result: one short line with no comma of its own. */
export function resultId(id: string): string {
  return cut(escapeControls(id).replace(/,/g, '\\x2c'), MAX_RESULT_ID)
}

/**
 * The Tekton results, name → content: the verdict, the counts per severity and of warnings and suppressed findings, the
 * blocking IDs (about 800 bytes at most).
 */
export function tektonResults(report: JsonReport): Record<string, string> {
  const ids = [...new Set(report.blocking.map((finding) => finding.id))]
  const more = ids.length - MAX_RESULT_IDS + report.omitted.blocking
  const listed = ids.slice(0, MAX_RESULT_IDS).map(resultId).join(',')
  return {
    verdict: report.verdict,
    ...Object.fromEntries(
      SEVERITIES.map((severity) => [severity, report.counts ? String(report.counts[severity]) : '']),
    ),
    blocking: more > 0 ? `${listed} (+${more} more)` : listed,
    warnings: report.counts ? String(report.warnings.length + report.omitted.warnings) : '',
    suppressed: report.counts ? String(report.suppressed.length + report.omitted.suppressed) : '',
    kev: report.knownExploited === null ? '' : String(report.knownExploited),
    reason: report.reason,
    message: cutBytes(escapeControls(report.message), MAX_RESULT_MESSAGE_BYTES),
  }
}

/** At most `max` bytes of UTF-8, cut at a character (the last an ellipsis when cut). */
export function cutBytes(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text
  let end = Math.min(text.length, max)
  while (end > 0 && Buffer.byteLength(text.slice(0, end)) > max - 3) end--
  if (/[\ud800-\udbff]/.test(text[end - 1] ?? '')) end-- // never half a surrogate pair
  return `${text.slice(0, end)}…`
}
