import { isRealDate, parseExpiry } from './input.ts'
import { isObject, textOf } from './json.ts'
import { cut, escapeControls, toJson } from './safe-text.ts'
import { GATES, SEVERITIES, SEVERITY_RANK, UsageError } from './vocabulary.ts'
import type { Exemption, Gate, ScanPolicyImport, Severity, UnknownAs } from './vocabulary.ts'

// ---------------------------------------------------------------------------------------------
// Pure functions: a way in from Scan 1.0 ScanPolicies

/**
 * TAP's documented templates (the two of the scanners, and the two "further refine" variants of the Grype
 * one, scst-scan/policies), each rule normalised (comments out, spacing canonical) and hashed (sha256, hex):
 * recognised exactly or not at all, since the gate never guesses at Rego semantics. The variable lists
 * (notAllowedSeverities, ignoreCves) are read separately, so their contents may differ.
 */
export type TemplateRules = ReadonlyArray<readonly [rule: string, sha256: string]>
export const SCAN_POLICY_TEMPLATES: ReadonlyArray<
  Pick<ScanPolicyImport, 'template' | 'variant'> & { readonly rules: TemplateRules }
> = [
  {
    template: 'grype',
    variant: 'plain',
    rules: [
      ['package main', '512843855fcc92a51c810b1b58e0731c01eac9a6a23c157bfa02aad71edffbe7'],
      ['contains(array, elem)', 'acb11bc92e7245410d3bbdd302f6a41aa27ddf89e81e784d7052bd93bdf63905'],
      ['isSafe(match), by severity', '27b041b8100c27c76d7ba56b2f8f154efafd2984eae4505549e189b0051b899b'],
      ['isSafe(match), by ignoreCves', '4111e836e26c319d0f072c85b628a7dd64d21ad9709ac42cbe624618bcf85003'],
      ['deny[msg]', '1e148e2b6a035349a57b9ebc23c16e0eca9bfb486809198325a0ddc762fe21b2'],
    ],
  },
  {
    template: 'trivy',
    variant: 'plain',
    rules: [
      ['package main', '512843855fcc92a51c810b1b58e0731c01eac9a6a23c157bfa02aad71edffbe7'],
      ['import future.keywords.in', '59c829aafbb6b74742fd6525b34d055d1f52343bc65472d047d0a012cc6e6297'],
      ['import future.keywords.every', '006c76372802724784e9c46bede49c07a445d33c7a378f76813466e29c6e599d'],
      ['notAllowedSet', '689c331e178c15031437da285108b4a7e0f68a6ae280d031dc44fcdeb7ce8e5f'],
      ['isSafe(match)', '4ba3d1c9dc0fb69e78a83f7669d01e0b3b51ce55aa79ccaac3533f61a93cb453'],
      ['isIgnored(match)', 'a9701cc6e948f0ac3e8c8f7160d9884ce7c5f260641d0dc6ece01bb0bb17c258'],
      ['deny[msg]', '13131ad835d3f2d1ff355ae570127dae5718934e1e40e35edd2f0eb9a22ecef6'],
    ],
  },
  {
    template: 'grype',
    variant: 'detail',
    rules: [
      ['package main', '512843855fcc92a51c810b1b58e0731c01eac9a6a23c157bfa02aad71edffbe7'],
      ['containsSeverity(array, elem)', 'd1288b92d5d64ec2ee42fda03601e4c831f597868de3ca5a9d0311218e373eb4'],
      ['isSafe(match), by severity', '20aff3b56c8acdecc4da848e2676e9b357fdd5ebfef54cac160fc09c32dacefc'],
      ['containsCve(array, elem), by id', '70477d893a3b89813172ad28e4604a84086b69ced97214e0cfec7fee02c151c6'],
      ['isSafe(match), by ignoreCves', '743c5ea0ad6802d8c181e15aa7b5b4cd36d87e0e9e1416b9abb2b0b02a56e80c'],
      ['deny[msg]', '1e148e2b6a035349a57b9ebc23c16e0eca9bfb486809198325a0ddc762fe21b2'],
    ],
  },
  {
    template: 'grype',
    variant: 'expiration',
    rules: [
      ['package main', '512843855fcc92a51c810b1b58e0731c01eac9a6a23c157bfa02aad71edffbe7'],
      ['containsSeverity(array, elem)', 'd1288b92d5d64ec2ee42fda03601e4c831f597868de3ca5a9d0311218e373eb4'],
      ['isSafe(match), by severity', '20aff3b56c8acdecc4da848e2676e9b357fdd5ebfef54cac160fc09c32dacefc'],
      [
        'containsCve(array, elem), by id and expiration',
        'b9279f8f3f6375bf3d8d119b05afd9c6b18e92f5203f9ad0e30c53beb2289e29',
      ],
      ['isSafe(match), by ignoreCves', '743c5ea0ad6802d8c181e15aa7b5b4cd36d87e0e9e1416b9abb2b0b02a56e80c'],
      ['deny[msg]', '1e148e2b6a035349a57b9ebc23c16e0eca9bfb486809198325a0ddc762fe21b2'],
    ],
  },
]

/** How messages name a recognised template. */
export const templateTitle = (policy: Pick<ScanPolicyImport, 'template' | 'variant'>) =>
  policy.variant === 'plain' ? `${policy.template} template` : `grype template refined with ${policy.variant}`

export const GO_MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/**
 * A date in Go's `2006-Jan-02` layout (the expiration variant's `time.parse_ns`): midnight UTC of that day, ms;
 * undefined when it is none.
 */
export function parseGoDate(text: string): number | undefined {
  const match = /^(\d{4})-([A-Z][a-z]{2})-(\d{2})$/.exec(text)
  const month = match ? GO_MONTHS.indexOf(match[2]!) + 1 : 0
  if (!match || month === 0 || !isRealDate(Number(match[1]), month, Number(match[3]))) return undefined
  return Date.UTC(Number(match[1]), month - 1, Number(match[3]))
}

/** Rego without comments, and a `[...]` list's end: strings (double-quoted or raw) are skipped whole. */
export function scanRego(text: string, from: number, onChar: (index: number) => boolean | void): void {
  for (let i = from; i < text.length; i++) {
    const char = text[i]!
    if (char === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++
    } else if (char === '`') {
      i = text.indexOf('`', i + 1)
      if (i === -1) return
    } else if (onChar(i) === false) return
  }
}

export function withoutComments(rego: string): string {
  let out = ''
  let copied = 0
  scanRego(rego, 0, (i) => {
    if (rego[i] !== '#') return
    const end = rego.indexOf('\n', i)
    out += rego.slice(copied, i)
    copied = end === -1 ? rego.length : end
  })
  return out + rego.slice(copied)
}

/** The rule text canonical: whitespace collapsed, none next to punctuation, strings as written. */
export function normaliseRego(rule: string): string {
  let out = ''
  let last = 0
  const flush = (end: number) => {
    out += rule.slice(last, end).replace(/\s+/g, ' ')
    last = end
  }
  scanRego(rule, 0, (i) => {
    if (rule[i] === '"' || rule[i] === '`') flush(i)
  })
  flush(rule.length)
  return out.replace(/ ?([{}[\]()|,:=;]) ?/g, '$1').trim()
}

/** `name := [...]` taken out of the Rego: the list's text (undefined when absent) and the Rego without it. */
export function takeList(
  rego: string,
  name: string,
  fail: (problem: string) => UsageError,
): { list?: string; rest: string } {
  const start = new RegExp(`^[ \\t]*${name}[ \\t]*:?=[ \\t]*\\[`, 'm').exec(rego)
  if (!start) return { rest: rego }
  const open = start.index + start[0].length - 1
  let depth = 0
  let end = -1
  scanRego(rego, open, (i) => {
    if (rego[i] === '[' || rego[i] === '{') depth++
    else if (rego[i] === ']' || rego[i] === '}') depth--
    if (depth === 0) {
      end = i
      return false
    }
  })
  if (end === -1) throw fail(`${name} has no closing ]`)
  return { list: rego.slice(open, end + 1), rest: rego.slice(0, start.index) + rego.slice(end + 1) }
}

/** A Rego list of strings or objects as JSON (Rego's literals are JSON's, with trailing commas allowed). */
export function regoList(text: string, name: string, fail: (problem: string) => UsageError): unknown[] {
  try {
    const value = JSON.parse(text.replace(/,(\s*[\]}])/g, '$1'))
    if (Array.isArray(value)) return value
  } catch {}
  throw fail(`${name} is not a list of plain values: ${cut(normaliseRego(text), 80)}`)
}

/** Top-level statements: each starts at a line's first column (a block scalar's indentation is gone by then). */
export function regoStatements(rego: string): string[] {
  const statements: string[] = []
  for (const line of rego.split('\n')) {
    if (!line.trim()) continue
    if (/^[^\s}]/.test(line) && !/^else\b/.test(line)) statements.push(line)
    else if (statements.length) statements[statements.length - 1] += `\n${line}`
    else statements.push(line)
  }
  return statements
}

/** The severities a ScanPolicy's notAllowedSeverities may name (as its Rego compares them, in any case). */
export const SCAN_POLICY_SEVERITIES: ReadonlyMap<string, Severity | 'negligible'> = new Map<
  string,
  Severity | 'negligible'
>([
  ...SEVERITIES.map((severity) => [severity, severity] as const),
  ['negligible', 'negligible'],
  ['unknownseverity', 'unknown'],
])

/**
 * The ScanPolicy among YAML documents, recognised as one of TAP's two templates, and what it says in the
 * gate's terms: the gate is the lowest listed of low to critical, UnknownSeverity makes unknown count as the
 * gate, each ignored CVE an exemption. Rego that is not the template is refused, naming the rules not
 * understood. `hash` is sha256 in hex (node:crypto, passed in so that this stays pure).
 */
export function scanPolicyFrom(
  documents: readonly unknown[],
  origin: string,
  hash: (text: string) => string,
): ScanPolicyImport {
  const fail = (problem: string) => new UsageError('SCAN_POLICY', `${origin}: ${problem}`)
  const policies = documents.filter((document) => isObject(document) && document.kind === 'ScanPolicy')
  if (policies.length !== 1)
    throw fail(
      policies.length
        ? `holds ${policies.length} ScanPolicies: give the file of the one your image scans used`
        : 'holds no ScanPolicy (kind: ScanPolicy, apiVersion scanning.apps.tanzu.vmware.com/v1beta1)',
    )
  const policy = policies[0] as Record<string, unknown>
  const name = isObject(policy.metadata) ? textOf(policy.metadata.name) || '(unnamed)' : '(unnamed)'
  const rego = isObject(policy.spec) && typeof policy.spec.regoFile === 'string' ? policy.spec.regoFile : undefined
  if (!rego) throw fail(`ScanPolicy ${name} has no spec.regoFile`)
  const severitiesTaken = takeList(withoutComments(rego), 'notAllowedSeverities', fail)
  const ignoresTaken = takeList(severitiesTaken.rest, 'ignoreCves', fail)
  if (severitiesTaken.list === undefined)
    throw fail(`ScanPolicy ${name}: no notAllowedSeverities list, so it is not one of TAP's templates`)
  const statements = regoStatements(ignoresTaken.rest).map((statement) => ({
    head: cut(statement.split('\n', 1)[0]!.trim(), 60),
    hash: hash(normaliseRego(statement)),
  }))
  const matching = (rules: TemplateRules) =>
    statements.filter((statement) => rules.some(([, sha]) => sha === statement.hash)).length
  const found = SCAN_POLICY_TEMPLATES.find(
    ({ rules }) => statements.length === rules.length && matching(rules) === rules.length,
  )
  if (!found) {
    const closest = [...SCAN_POLICY_TEMPLATES].sort((a, b) => matching(b.rules) - matching(a.rules))[0]!
    const { rules } = closest
    const unknown = statements
      .filter((statement) => !rules.some(([, sha]) => sha === statement.hash))
      .map((statement) => statement.head)
    const missing = rules
      .filter(([, sha]) => !statements.some((statement) => statement.hash === sha))
      .map(([rule]) => rule)
    throw fail(
      `the Rego of ScanPolicy ${name} is not TAP's ${templateTitle(closest)}, so the gate will not guess what it ` +
        `means: ` +
        [
          unknown.length ? `not understood: ${unknown.join('; ')}` : '',
          missing.length ? `missing or changed: ${missing.join('; ')}` : '',
        ]
          .filter(Boolean)
          .join('; ') +
        '. Translate it by hand into --gate and --exemptions (docs/policy.md, From Scan 1.0)',
    )
  }
  const { template, variant } = found
  const title = templateTitle(found)
  let notAllowed = 0
  const listed = new Set<Severity | 'negligible'>()
  for (const entry of regoList(severitiesTaken.list, 'notAllowedSeverities', fail)) {
    const severity = typeof entry === 'string' ? SCAN_POLICY_SEVERITIES.get(entry.trim().toLowerCase()) : undefined
    if (!severity)
      throw fail(
        `notAllowedSeverities holds ${JSON.stringify(entry)}, which is none of Critical, High, Medium, Low, ` +
          `Negligible, UnknownSeverity`,
      )
    listed.add(severity)
    if (severity !== 'negligible') notAllowed |= 1 << SEVERITY_RANK[severity]
  }
  const notes: string[] = []
  const standard = (['low', 'medium', 'high', 'critical'] as const).filter((severity) => listed.has(severity))
  let gate: Gate = standard[0] ?? 'none'
  if (listed.has('negligible')) {
    gate = 'low'
    notes.push('Negligible is below low, which is the lowest gate: low')
  }
  const fromGate = GATES.filter(
    (level) => level !== 'none' && gate !== 'none' && SEVERITY_RANK[level] >= SEVERITY_RANK[gate],
  )
  const gaps = fromGate.filter((level) => !listed.has(level as Severity))
  if (gaps.length)
    notes.push(
      `the gate blocks everything from ${gate} up, so ${gaps.join(' and ')} findings block too, which the policy did ` +
        `not list`,
    )
  if (gate === 'none' && listed.has('unknown')) notes.push('UnknownSeverity alone sets no gate: gate none')
  const unknownAs: UnknownAs = listed.has('unknown') && gate !== 'none' ? gate : 'ignore'
  // The list is read as each template's Rego reads it. The plain templates compare whole entries with the ID
  // (`contains(ignoreCves, match.id)`, `match.id in ignoreCves`): only strings ever ignored a CVE. The refined
  // variants compare `array[_].id`: only objects did, and the expiration variant only until its date.
  const exemptions: Exemption[] = []
  const owner = `ScanPolicy ${name}`
  for (const [index, entry] of (ignoresTaken.list === undefined
    ? []
    : regoList(ignoresTaken.list, 'ignoreCves', fail)
  ).entries()) {
    const id =
      typeof entry === 'string' ? entry.trim() : isObject(entry) && typeof entry.id === 'string' ? entry.id.trim() : ''
    if (!id) throw fail(`ignoreCves[${index}] is neither a CVE ID nor an object with an id`)
    const never = (why: string) =>
      notes.push(
        `ignoreCves[${index}] (${cut(id, 40)}) ${why}, so Scan 1.0 never ignored it: the gate does not either (give ` +
          `it in --exemptions with a reason and an expiry)`,
      )
    if (variant === 'plain') {
      if (typeof entry === 'string')
        exemptions.push({
          id,
          reason: `ignored in ${owner}`,
          expires: 'never',
          expiresAt: Number.POSITIVE_INFINITY,
          owner,
          permanent: true,
        })
      else never(`is an object, which TAP's ${title} compares whole with the CVE ID`)
      continue
    }
    if (!isObject(entry)) {
      never(`is a string, which TAP's ${title} compares by its .id`)
      continue
    }
    const reason = textOf(entry.detail) || `ignored in ${owner}`
    if (variant === 'detail') {
      exemptions.push({ id, reason, expires: 'never', expiresAt: Number.POSITIVE_INFINITY, owner, permanent: true })
      continue
    }
    const expiration = textOf(entry.expiration)
    const expiresAt = parseGoDate(expiration)
    // time.parse_ns gives midnight UTC of the day, and the Rego ignores only while now is before it.
    if (expiresAt === undefined)
      notes.push(
        `ignoreCves[${index}] (${cut(id, 40)}) has no expiration in the 2006-Jan-02 layout (e.g. 2030-Dec-31): the ` +
          `gate does not apply it (give it one, or use --exemptions)`,
      )
    else exemptions.push({ id, reason, expires: expiration, expiresAt: expiresAt - 1, owner })
  }
  if (variant === 'expiration' && exemptions.length) {
    notes.push(
      "this template's containsCve checks that some entry of ignoreCves has not expired, not the matching entry: " +
        'Scan 1.0 went on ignoring a CVE whose own entry had expired while any other entry had not. The gate applies ' +
        "each entry's own expiration, the reading the template's text intends, so an expired entry may block now",
    )
  }
  return { name, template, variant, gate, unknownAs, exemptions, notAllowed, notes }
}

/** How far ahead --print-exemptions dates an ignored CVE the ScanPolicy gave no expiration. */
export const REVIEW_DAYS = 90

/** --print-exemptions: the ScanPolicy as an --exemptions file, with the gate to use in a comment. */
export function renderScanPolicyExemptions(scanPolicy: ScanPolicyImport, now: number): string {
  const review = new Date(now + REVIEW_DAYS * 86_400_000).toISOString().slice(0, 10)
  const quote = (value: string) => toJson(value).trimEnd()
  const lines = [
    `# From ScanPolicy ${escapeControls(scanPolicy.name)} (TAP's ${templateTitle(scanPolicy)}), for --exemptions.`,
    scanPolicy.unknownAs === 'ignore'
      ? `# Its gate: --gate ${scanPolicy.gate} (GATE=${scanPolicy.gate}).`
      : `# Its gate: --gate ${scanPolicy.gate} --unknown-as ${scanPolicy.unknownAs} ` +
        `(GATE=${scanPolicy.gate}, POLICY_UNKNOWN_AS=${scanPolicy.unknownAs}).`,
    ...scanPolicy.notes.map((note) => `# Note: ${escapeControls(note)}.`),
    'exemptions:',
  ]
  for (const exemption of scanPolicy.exemptions) {
    lines.push(`  - id: ${quote(exemption.id)}`, `    reason: ${quote(exemption.reason)}`)
    if (exemption.permanent)
      lines.push(
        `    expires: ${quote(review)}  # no expiration in the ScanPolicy: ${REVIEW_DAYS} days from today, review it ` +
          `by then`,
      )
    // An expiration variant's 2030-Dec-31 ends at that day's start: written as the instant, which --exemptions
    // reads back.
    else {
      const expires =
        parseExpiry(exemption.expires) === exemption.expiresAt
          ? exemption.expires
          : new Date(exemption.expiresAt).toISOString()
      lines.push(`    expires: ${quote(expires)}`)
    }
    lines.push(`    owner: ${quote(exemption.owner ?? `ScanPolicy ${scanPolicy.name}`)}`)
  }
  if (scanPolicy.exemptions.length === 0) lines[lines.length - 1] = 'exemptions: []'
  return `${lines.join('\n')}\n`
}
