// Bundles policy.ts and gate/ for Node 24 into dist/: policy.mjs (with its source map) and, split off by esbuild's
// own code splitting (https://esbuild.github.io/api/#splitting), dist/chunks/: undici, yaml and the CVSS calculator,
// gate/registry.ts, gate/kubernetes.ts and gate/scan-policy.ts, each loaded with import() only when a run needs
// it, and the code they share with the entry. So --help, usage errors and --input never parse 1.6 MB of code they
// do not run (measured by `npm run bench`: --help within 2x of bare node; test/layout.test.ts holds the split).
import { build } from 'esbuild'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'))
const outdir = new URL('./dist/', import.meta.url).pathname
rmSync(outdir, { recursive: true, force: true }) // no chunk of an earlier build may linger

const result = await build({
  entryPoints: { policy: new URL('./policy.ts', import.meta.url).pathname },
  outdir,
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  sourcemap: true,
  sourcesContent: false, // the map names policy.ts lines; the source itself is in the repository, not the image
  minify: false, // readable stack traces; minifying saves no start-up time (stack notes)
  legalComments: 'eof',
  logLevel: 'warning',
  metafile: true,
  define: { __VERSION__: JSON.stringify(pkg.version) },
  // undici is CommonJS: its require('node:...') calls need a real require inside an ES module.
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
  },
})

// The npm packages inside the bundle, where scanners look for them (Trivy's node-pkg analyzer reads any
// package.json with a name and version; Syft's javascript cataloger too): dist/node_modules/<name>/package.json,
// each with the name, version and licence of the package esbuild took code from. Without them the image's
// scanners would find undici, yaml and the CVSS calculator nowhere.
const bundled = new Set()
for (const output of Object.values(result.metafile.outputs)) {
  for (const input of Object.keys(output.inputs)) {
    const match = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input)
    if (match) bundled.add(match[1])
  }
}
for (const name of [...bundled].sort()) {
  const { version, license } = JSON.parse(
    readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), 'utf8'),
  )
  const folder = `${outdir}node_modules/${name}`
  mkdirSync(folder, { recursive: true })
  const record = { name, version, license, description: `bundled into /app/policy.mjs by ${pkg.name} ${pkg.version}` }
  writeFileSync(`${folder}/package.json`, `${JSON.stringify(record, null, 2)}\n`)
}
