import { isObject } from './json.ts'

// ---------------------------------------------------------------------------------------------
// Pure functions: data from outside is data, never terminal control

/**
 * What a terminal, an XML parser or a log viewer would act on instead of showing: C0 and C1 controls, DEL,
 * line and paragraph separators, bidirectional overrides and isolates (Trojan Source), zero-width marks,
 * the BOM, non-characters and lone surrogates.
 */
export const UNSAFE_CHARS = new RegExp(
  [
    // C0 and C1 controls, the Arabic letter mark, zero-width marks, line and paragraph separators, bidirectional
    // overrides and isolates, the BOM and non-characters
    String.raw`[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069` +
      String.raw`\ufeff\ufff9-\ufffb\ufffe\uffff]`,
    String.raw`[\ud800-\udbff](?![\udc00-\udfff])`, // a high surrogate alone
    String.raw`(?<![\ud800-\udbff])[\udc00-\udfff]`, // a low surrogate alone
  ].join('|'),
  'g',
)
/** The same, less what JSON.stringify escapes itself (C0, lone surrogates) and the line breaks of its indentation. */
export const JSON_UNSAFE_CHARS =
  /[\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb\ufffe\uffff]/g

export const hex = (char: string, digits: number) => char.charCodeAt(0).toString(16).padStart(digits, '0')

/** Every unsafe character shown as an escape (`\x1b`, `\u202e`): one line of plain text, whatever came in. */
export function escapeControls(value: string): string {
  return value.replace(UNSAFE_CHARS, (char) =>
    char.charCodeAt(0) < 0x100 ? `\\x${hex(char, 2)}` : `\\u${hex(char, 4)}`,
  )
}

/** At most `max` characters, the last an ellipsis when cut; a surrogate pair is never split. */
export function cut(value: string, max: number): string {
  if (value.length <= max) return value
  const end = /[\ud800-\udbff]/.test(value[max - 2] ?? '') ? max - 2 : max - 1
  return `${value.slice(0, end)}…`
}

/** A field from outside, fit for one cell of the text summary. */
export function displayText(value: string, max: number): string {
  return cut(escapeControls(value), max)
}

/** JSON (indented, with a final newline) that no terminal acts on: C1, DEL and the rest are \u-escaped too. */
export function toJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2).replace(JSON_UNSAFE_CHARS, (char) => `\\u${hex(char, 4)}`)}\n`
}

export const XML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
}

/** XML 1.0 cannot hold most control characters even as references, so they are shown escaped first. */
export function xml(value: string): string {
  return escapeControls(value).replace(/[&<>"']/g, (char) => XML_ESCAPES[char]!)
}

/**
 * Fields of the JSON report that hold only the gate's own words (codes, levels, states): a secret is never
 * looked for there, so that no secret, however chosen, can rewrite a verdict or an error code.
 */
export const OWN_WORDS: ReadonlySet<string> = new Set([
  'schemaVersion',
  'tool',
  'gate',
  'mode',
  'verdict',
  'exitCode',
  'enforcedExitCode',
  'counts',
  'severity',
  'rule',
  'state',
  'kind',
  'code',
  'warnedBy',
  'omitted',
])

/**
 * The JSON report with every secret replaced in the strings that came from outside: by value, so the JSON stays JSON.
 */
export function redactReport<T>(value: T, secrets: readonly string[], key = ''): T {
  if (!secrets.length || OWN_WORDS.has(key)) return value
  if (typeof value === 'string') return redact(value, secrets) as T
  if (Array.isArray(value)) return value.map((item) => redactReport(item, secrets)) as T
  if (isObject(value))
    return Object.fromEntries(
      Object.entries(value).map(([name, item]) => [name, redactReport(item, secrets, name)]),
    ) as T
  return value
}

/**
 * A text summary redacted, all but its verdict line: the gate writes that line from counts alone, and no secret may
 * rewrite it.
 */
export function redactSummary(text: string, secrets: readonly string[]): string {
  const end = text.lastIndexOf('\n', text.length - 2) + 1
  const last = text.slice(end)
  return /^(?:\x1b\[[\d;]*m)?(?:PASS|FAIL): /.test(last)
    ? redact(text.slice(0, end), secrets) + last
    : redact(text, secrets)
}

/** Replaces every secret with [redacted]: as written, and in the escaped forms JSON and XML give it. */
export function redact(output: string, secrets: readonly string[]): string {
  let result = output
  for (const secret of secrets) {
    if (!secret) continue
    for (const form of new Set([secret, JSON.stringify(secret).slice(1, -1), xml(secret)])) {
      if (result.includes(form)) result = result.split(form).join('[redacted]')
    }
  }
  return result
}
