// The second JSON Schema validator of the test suite: ajv in its default strict mode.
//
// stdin:  {"schemas": {"NAME": SCHEMA, ...}, "documents": [{"schema": "NAME", "data": ...}]}
// stdout: {"warnings": [...], "results": [{"valid": true|false, "errors": [...]}, ...]}
//
// A schema ajv refuses in strict mode (an unknown keyword, a union type...) makes this exit
// with status 1 and the error on stderr; what strict mode only logs is returned in
// "warnings", so that the tests refuse it too.
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";

const input = JSON.parse(readFileSync(0, "utf8"));
const warnings = [];
const logger = {
  log: () => {},
  warn: (...args) => warnings.push(args.join(" ")),
  error: (...args) => warnings.push(args.join(" ")),
};
const ajv = new Ajv2020({ allErrors: true, logger });
const validators = {};
for (const [name, schema] of Object.entries(input.schemas)) {
  try {
    validators[name] = ajv.compile(schema);
  } catch (error) {
    process.stderr.write(`ajv refuses the ${name} schema: ${error.message}\n`);
    process.exit(1);
  }
}
const results = input.documents.map(({ schema, data }) => {
  const validate = validators[schema];
  const valid = validate(data);
  return { valid, errors: valid ? [] : validate.errors };
});
process.stdout.write(JSON.stringify({ warnings, results }));
