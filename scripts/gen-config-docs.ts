// Rewrites config/mesh.schema.json and docs/configuration.md from core/config/schema.ts.
import { writeFileSync } from 'node:fs';
import { configReferenceMarkdown, meshJsonSchema } from '../core/config/reference.js';

writeFileSync(new URL('../config/mesh.schema.json', import.meta.url), `${JSON.stringify(meshJsonSchema(), null, 2)}\n`);
writeFileSync(new URL('../docs/configuration.md', import.meta.url), configReferenceMarkdown());
console.log('wrote config/mesh.schema.json and docs/configuration.md');
