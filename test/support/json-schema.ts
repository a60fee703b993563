// JSON Schema 2020-12 with formats (uri, date-time), as the OpenVEX, in-toto and SLSA schemas of test/fixtures need.
import Ajv2020Module from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'

// Both are CommonJS with a default export, as test/support/sarif.ts reads ajv-draft-04.
const Ajv2020 = (Ajv2020Module as unknown as { default: new (options: object) => import('ajv').default }).default
const addFormats = (addFormatsModule as unknown as { default: (ajv: import('ajv').default) => void }).default
const ajv = new Ajv2020({ allErrors: true, strict: false })
addFormats(ajv)

/** A validator of one schema; its `errors` say why a document failed. */
export const compileSchema = (schema: object) => ajv.compile(schema)
