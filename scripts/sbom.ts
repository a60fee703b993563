// The CycloneDX 1.6 SBOM of one architecture's image, from its files as scanners read them: the Debian packages
// in /var/lib/dpkg/status.d, the release in /usr/lib/os-release, Node's release (the base's label), and the npm
// packages bundled into the gate (/app/node_modules/<name>/package.json). Built and checked against the CycloneDX
// schema with @cyclonedx/cyclonedx-library, the format's own library; a document it finds invalid is not printed.
//   node scripts/sbom.ts ROOTFS ARCH NODE_VERSION > sbom.cdx.json
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Enums, Models, Serialize, Spec, Validation } from '@cyclonedx/cyclonedx-library'
import { PackageURL } from 'packageurl-js'

const [rootfs, arch, nodeVersion] = process.argv.slice(2)
if (!rootfs || !arch || !nodeVersion) {
  console.error('usage: node scripts/sbom.ts ROOTFS ARCH NODE_VERSION')
  process.exit(2)
}
const { name, version, license } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))

/** A Debian control file's fields (a continuation line belongs to the field before it). */
function controlFields(text: string): Record<string, string> {
  const fields: Record<string, string> = {}
  let last = ''
  for (const line of text.split('\n')) {
    if (/^\s/.test(line) && last) fields[last] += `\n${line.trim()}`
    else if (line.includes(':')) {
      last = line.slice(0, line.indexOf(':'))
      fields[last] = line.slice(line.indexOf(':') + 1).trim()
    }
  }
  return fields
}

/** os-release's KEY=value lines (a value may be quoted, and may hold '='). */
const osRelease = Object.fromEntries(
  readFileSync(join(rootfs, 'usr/lib/os-release'), 'utf8')
    .split('\n')
    .filter((line) => line.includes('='))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1).replace(/^"(.*)"$/, '$1')]),
)
const distro = `${osRelease.ID}-${osRelease.VERSION_ID}`
const bom = new Models.Bom()
bom.metadata.component = new Models.Component(Enums.ComponentType.Container, name, { version, bomRef: name })
bom.metadata.component.properties.add(new Models.Property('oci:image:architecture', arch))
bom.metadata.tools.components.add(
  new Models.Component(Enums.ComponentType.Application, `${name} scripts/sbom.ts`, { version }),
)
const add = (component: Models.Component) => bom.components.add(component)

add(
  new Models.Component(Enums.ComponentType.OperatingSystem, osRelease.ID!, {
    version: osRelease.VERSION_ID!,
    bomRef: 'os',
  }),
)
for (const file of readdirSync(join(rootfs, 'var/lib/dpkg/status.d')).sort()) {
  const fields = controlFields(readFileSync(join(rootfs, 'var/lib/dpkg/status.d', file), 'utf8'))
  const qualifiers = { arch: fields.Architecture!, distro }
  add(
    new Models.Component(Enums.ComponentType.Library, fields.Package!, {
      version: fields.Version!,
      purl: new PackageURL('deb', 'debian', fields.Package!, fields.Version!, qualifiers, undefined).toString(),
      bomRef: `deb:${fields.Package}`,
    }),
  )
}
add(
  new Models.Component(Enums.ComponentType.Application, 'node', {
    version: nodeVersion,
    purl: new PackageURL('generic', undefined, 'node', nodeVersion, undefined, undefined).toString(),
    cpe: `cpe:2.3:a:nodejs:node.js:${nodeVersion}:*:*:*:*:*:*:*`,
    bomRef: 'node',
  }),
)
// Scoped packages (@noble/ciphers) sit one folder deeper; their purl's namespace is the scope.
const modules = join(rootfs, 'app/node_modules')
const folders = readdirSync(modules)
  .sort()
  .flatMap((folder) =>
    folder.startsWith('@')
      ? readdirSync(join(modules, folder))
          .sort()
          .map((name) => `${folder}/${name}`)
      : [folder],
  )
for (const folder of folders) {
  const packageJson = JSON.parse(readFileSync(join(modules, folder, 'package.json'), 'utf8'))
  const [scope, name] = packageJson.name.startsWith('@') ? packageJson.name.split('/') : [undefined, packageJson.name]
  const component = new Models.Component(Enums.ComponentType.Library, packageJson.name, {
    version: packageJson.version,
    purl: new PackageURL('npm', scope, name, packageJson.version, undefined, undefined).toString(),
    bomRef: `npm:${packageJson.name}`,
  })
  if (packageJson.license) component.licenses.add(new Models.SpdxLicense(packageJson.license))
  add(component)
}
if (license) bom.metadata.component.licenses.add(new Models.SpdxLicense(license))

const spec = Spec.Spec1dot6
const json = new Serialize.JsonSerializer(new Serialize.JSON.Normalize.Factory(spec)).serialize(bom, {
  sortLists: true,
  space: 2,
})
const invalid = await new Validation.JsonStrictValidator(spec.version).validate(json)
if (invalid) {
  console.error(`sbom.ts: the SBOM does not validate against CycloneDX ${spec.version}: ${JSON.stringify(invalid)}`)
  process.exit(1)
}
process.stdout.write(`${json}\n`)
