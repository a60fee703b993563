// Bundles policy.ts and undici into one ESM file for Node 24: dist/policy.mjs (+ source map).
import { build } from 'esbuild'
import { readFileSync } from 'node:fs'

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'))

await build({
  entryPoints: [new URL('./policy.ts', import.meta.url).pathname],
  outfile: new URL('./dist/policy.mjs', import.meta.url).pathname,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  sourcemap: true,
  minify: false, // readable stack traces; minifying saves no start-up time (stack notes)
  legalComments: 'eof',
  define: { __VERSION__: JSON.stringify(pkg.version) },
  // undici is CommonJS: its require('node:...') calls need a real require inside an ES module.
  banner: { js: "#!/usr/bin/env node\nimport { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
  logLevel: 'warning',
})
