// The SARIF 2.1.0 schema (vendored in test/fixtures) compiled once, for every test that checks a SARIF report.
import AjvDraft04 from 'ajv-draft-04'
import { readFileSync } from 'node:fs'

const schema = JSON.parse(readFileSync(new URL('../fixtures/sarif-schema-2.1.0.json', import.meta.url), 'utf8'))
// ajv-draft-04 is CommonJS with a default export; the SARIF schema's language pattern is not valid under the u flag.
const Ajv = (AjvDraft04 as unknown as { default: new (options: object) => import('ajv').default }).default

export const validateSarif = new Ajv({ allErrors: true, strict: false, unicodeRegExp: false }).compile(schema)
