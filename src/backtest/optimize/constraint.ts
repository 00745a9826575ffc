import jsep from 'jsep';
import { InvalidInputError } from '../../core/index.js';
import type { ParameterValue } from '../../search/index.js';
import type { Combination, Parameter } from './grid.js';

// jsep parses the text into a tree and never runs it; the tree is walked below over the operators
// listed here only, so a constraint can compute and compare but reach nothing else.
jsep.addBinaryOp('and', 2);
jsep.addBinaryOp('or', 1);
jsep.addUnaryOp('not');

type Value = ParameterValue | boolean;

const BINARY: Readonly<Record<string, (a: Value, b: Value) => Value>> = {
  '+': (a, b) => number(a) + number(b),
  '-': (a, b) => number(a) - number(b),
  '*': (a, b) => number(a) * number(b),
  '/': (a, b) => number(a) / number(b),
  '%': (a, b) => number(a) % number(b),
  '<': (a, b) => number(a) < number(b),
  '<=': (a, b) => number(a) <= number(b),
  '>': (a, b) => number(a) > number(b),
  '>=': (a, b) => number(a) >= number(b),
  '==': (a, b) => a === b,
  '===': (a, b) => a === b,
  '!=': (a, b) => a !== b,
  '!==': (a, b) => a !== b,
};
const LOGICAL = new Set(['&&', 'and', '||', 'or']);

/** What a value that is not a number did in arithmetic or an order comparison. */
class NotANumber extends Error {}

function number(value: Value): number {
  if (typeof value !== 'number') throw new NotANumber(`${JSON.stringify(value)} is not a number`);
  return value;
}

/** A compiled `--constraint`: whether a combination is kept. */
export interface Constraint {
  readonly text: string;
  accepts(combination: Combination): boolean;
}

/**
 * Compiles a `--constraint` over the parameters: numbers, strings in quotes, parameter names (as in
 * `--param`, dotted paths included), `+ - * / %`, `< <= > >= == !=`, `and`/`&&`, `or`/`||`,
 * `not`/`!`, parentheses. Its value must be true or false.
 * @throws InvalidInputError naming `--constraint`: text that does not parse (with the character),
 *   a name that is not a parameter (with the parameters), an operator or form not listed above.
 */
export function compileConstraint(text: string, parameters: readonly Parameter[]): Constraint {
  let tree: jsep.Expression;
  try {
    tree = jsep(text);
  } catch (error) {
    throw new InvalidInputError('--constraint', `${JSON.stringify(text)} does not parse: ${(error as Error).message}`);
  }
  const index = new Map(parameters.map((parameter, i) => [parameter.name, i]));
  const fail = (message: string): never => {
    throw new InvalidInputError('--constraint', `${JSON.stringify(text)}: ${message}`);
  };
  type Compiled = (combination: Combination) => Value;
  const compile = (node: jsep.Expression): Compiled => {
    switch (node.type) {
      case 'Literal': {
        const value = (node as jsep.Literal).value;
        if (typeof value !== 'number' && typeof value !== 'string' && typeof value !== 'boolean') return fail(`${String((node as jsep.Literal).raw)} is not a number or a string`);
        return () => value;
      }
      case 'Identifier':
      case 'MemberExpression': {
        const name = nameOf(node);
        const at = name === undefined ? undefined : index.get(name);
        if (at === undefined) {
          return fail(`${name ?? 'this expression'} is not a parameter of the search; the parameters are ${parameters.map((parameter) => parameter.name).join(', ')}`);
        }
        return (combination) => combination[at] as ParameterValue;
      }
      case 'UnaryExpression': {
        const { operator, argument } = node as jsep.UnaryExpression;
        const inner = compile(argument);
        if (operator === '!' || operator === 'not') return (combination) => !truth(inner(combination));
        if (operator === '-') return (combination) => -number(inner(combination));
        if (operator === '+') return (combination) => number(inner(combination));
        return fail(`the operator ${operator} is not allowed`);
      }
      case 'BinaryExpression': {
        const { operator, left, right } = node as jsep.BinaryExpression;
        const a = compile(left);
        const b = compile(right);
        if (LOGICAL.has(operator)) {
          return operator === '&&' || operator === 'and' ? (combination) => truth(a(combination)) && truth(b(combination)) : (combination) => truth(a(combination)) || truth(b(combination));
        }
        const apply = BINARY[operator];
        if (apply === undefined) return fail(`the operator ${operator} is not allowed; use + - * / % < <= > >= == != and or not`);
        return (combination) => apply(a(combination), b(combination));
      }
      default:
        return fail(`${node.type} is not allowed; use parameters, numbers, + - * / % < <= > >= == != and or not, and parentheses`);
    }
  };
  function truth(value: Value): boolean {
    if (typeof value !== 'boolean') throw new NotANumber(`${JSON.stringify(value)} is not true or false; compare it (e.g. fastPeriod < slowPeriod)`);
    return value;
  }
  const evaluate = compile(tree);
  return {
    text,
    accepts(combination) {
      let value: Value;
      try {
        value = evaluate(combination);
      } catch (error) {
        if (!(error instanceof NotANumber)) throw error;
        return fail(error.message);
      }
      if (typeof value !== 'boolean') return fail(`gives ${JSON.stringify(value)}, not true or false; write a comparison (e.g. fastPeriod < slowPeriod)`);
      return value;
    },
  };
}

/** `strategies[0].fastPeriod` from its tree; `undefined` for anything but names, dots and whole-number indexes. */
function nameOf(node: jsep.Expression): string | undefined {
  if (node.type === 'Identifier') return (node as jsep.Identifier).name;
  if (node.type !== 'MemberExpression') return undefined;
  const { object, property, computed } = node as jsep.MemberExpression;
  const base = nameOf(object);
  if (base === undefined) return undefined;
  if (!computed) return property.type === 'Identifier' ? `${base}.${(property as jsep.Identifier).name}` : undefined;
  const key = property.type === 'Literal' ? (property as jsep.Literal).value : undefined;
  return typeof key === 'number' && Number.isInteger(key) ? `${base}[${key}]` : undefined;
}
