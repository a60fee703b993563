// Bundles policy.ts, undici and yaml into one ESM file for Node 24: dist/policy.mjs (+ source map).
import { build } from 'esbuild'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'))
const common = { bundle: true, platform: 'node', target: 'node24', legalComments: 'eof', logLevel: 'warning' }

// undici (for a request) and yaml (for --exemptions) are 1.3 MB of code that --help, usage errors and
// --input never run, but V8 would still parse them at start-up, which made --help 2.2x bare node (bench/).
// So each goes into the one file as its own CommonJS bundle, gzipped, and is compiled on first import with
// vm.compileFunction, as Node compiles any CommonJS file (1.4x bare node; the file shrinks from 1.7 MB to
// 0.5 MB). Stack frames inside them name `bundled:undici:LINE`: the lines of dist/bundled/undici.cjs.
const LAZY_MODULES = ['undici', 'yaml']
const lazySources = Object.fromEntries(
  await Promise.all(
    LAZY_MODULES.map(async (name) => {
      const { outputFiles } = await build({ ...common, stdin: { contents: `module.exports = require(${JSON.stringify(name)})`, resolveDir: import.meta.dirname }, format: 'cjs', write: false })
      mkdirSync(new URL('./dist/bundled/', import.meta.url), { recursive: true })
      writeFileSync(new URL(`./dist/bundled/${name}.cjs`, import.meta.url), outputFiles[0].text)
      return [name, outputFiles[0].text]
    }),
  ),
)
const compileOnFirstImport = {
  name: 'compile-on-first-import',
  setup(builder) {
    builder.onResolve({ filter: new RegExp(`^(${LAZY_MODULES.join('|')})$`) }, ({ path }) => ({ path, namespace: 'lazy' }))
    builder.onLoad({ filter: /.*/, namespace: 'lazy' }, ({ path }) => ({
      loader: 'js',
      contents: `const { compileFunction } = require('node:vm')
const { gunzipSync } = require('node:zlib')
const source = gunzipSync(Buffer.from(${JSON.stringify(gzipSync(lazySources[path], { level: 9 }).toString('base64'))}, 'base64')).toString('utf8')
const compiled = { exports: {} }
compileFunction(source, ['exports', 'require', 'module'], { filename: 'bundled:${path}' })(compiled.exports, require, compiled)
module.exports = compiled.exports`,
    }));
  },
}

await build({
  ...common,
  entryPoints: [new URL('./policy.ts', import.meta.url).pathname],
  outfile: new URL('./dist/policy.mjs', import.meta.url).pathname,
  format: 'esm',
  sourcemap: true,
  minify: false, // readable stack traces; minifying saves no start-up time (stack notes)
  define: { __VERSION__: JSON.stringify(pkg.version) },
  plugins: [compileOnFirstImport],
  // undici is CommonJS: its require('node:...') calls need a real require inside an ES module.
  banner: { js: "#!/usr/bin/env node\nimport { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
})
