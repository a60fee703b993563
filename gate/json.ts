import { NoVerdictError, UsageError } from './vocabulary.ts'
import type { UsageCode } from './vocabulary.ts'

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export const NO_ITEMS: readonly unknown[] = []

/** `null` or missing means none; anything else that is not a list is malformed. */
export function listAt(
  document: DocumentName,
  owner: Record<string, unknown>,
  key: string,
  path: string,
): readonly unknown[] {
  const value = owner[key]
  if (value === null || value === undefined) return NO_ITEMS
  if (!Array.isArray(value)) throw malformed(document, `${path}${key} is ${describeJson(value)}, expected a list`)
  return value
}

export function objectAt(document: DocumentName, value: unknown, path: string): Record<string, unknown> {
  if (!isObject(value)) throw notAnObject(document, value, path)
  return value
}

export function notAnObject(document: DocumentName, value: unknown, path: string): NoVerdictError {
  return malformed(document, `${path} is ${describeJson(value)}, expected an object`)
}

export function describeJson(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}

/** The documents the gate reads (the store's answers, a scanner's CycloneDX), as messages name them. */
export type DocumentName = 'the image report' | 'the triage page' | 'the reports page' | 'the CycloneDX document'
export const IMAGE_REPORT: DocumentName = 'the image report'
export const TRIAGE_PAGE: DocumentName = 'the triage page'
export const REPORTS_PAGE: DocumentName = 'the reports page'
export const SCAN_DOCUMENT: DocumentName = 'the CycloneDX document'

export function malformed(document: DocumentName, detail: string): NoVerdictError {
  return new NoVerdictError('MALFORMED_RESPONSE', `${document} is malformed: ${detail}`)
}

/** A string or number field as trimmed text; anything else is empty. */
export function textOf(value: unknown): string {
  return typeof value === 'string' ? value.trim() : typeof value === 'number' ? String(value) : ''
}

export function firstLine(body: string, max = 200): string {
  const line = body.trim().split('\n', 1)[0]!.trim()
  return line.length > max ? `${line.slice(0, max)}...` : line
}

/** JSON.parse of text from outside: a byte order mark at the start (Windows tools write one) is no part of the JSON. */
export function parseJson(text: string): unknown {
  return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
}

/**
 * parseJson, or NoVerdictError('MALFORMED_RESPONSE'): "${source} is not JSON", quoting the start of the body
 * through `quote` (a peer that holds a secret redacts before the quote is cut, or withholds it).
 */
export function parseJsonBody(body: string, source: string, quote: (text: string) => string = (text) => text): unknown {
  try {
    return parseJson(body)
  } catch (error) {
    throw new NoVerdictError(
      'MALFORMED_RESPONSE',
      `${source} is not JSON (${quote((error as Error).message)}): "${firstLine(quote(body), 80)}"`,
    )
  }
}

/**
 * A JSON configuration file (a Docker config, CISA's KEV catalog) as data; one that is not JSON is a usage error saying
 * what to give.
 */
export function parseJsonConfig(text: string, code: UsageCode, notJson: string): unknown {
  try {
    return parseJson(text)
  } catch {
    throw new UsageError(code, notJson)
  }
}
