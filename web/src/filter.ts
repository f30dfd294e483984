// The runs table's filter language, compiled to runyard.query's MongoDB-style filter document
// (sent as JSON in /runs?filter=...). Grammar:
//
//   expr   := term ("or" term)*
//   term   := factor ("and" factor)*
//   factor := "not" factor | "(" expr ")" | FIELD OP VALUE | FIELD "in" "[" VALUE ("," VALUE)* "]"
//   OP     := = == != < <= > >= ~        (~ is a regular expression search)
//   VALUE  := number | true | false | null | 'quoted' | "quoted" | bare-word
//
// e.g.  config.optimizer.lr < 0.01 and state = finished
//       summary.test/accuracy >= 0.9 or tags in [best, baseline]

export type Filter = Record<string, unknown>;

export class FilterError extends Error {}

type Token = { kind: "word" | "op" | "str" | "punct"; text: string; pos: number };

const OPS = ["==", "!=", "<=", ">=", "=", "<", ">", "~"];
const MONGO: Record<string, string> = { "=": "$eq", "==": "$eq", "!=": "$ne", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte" };

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if ("()[],".includes(c)) {
      out.push({ kind: "punct", text: c, pos: i });
      i++;
      continue;
    }
    const op = OPS.find((o) => text.startsWith(o, i));
    if (op) {
      out.push({ kind: "op", text: op, pos: i });
      i += op.length;
      continue;
    }
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) throw new FilterError(`unclosed quote at ${i + 1}`);
      out.push({ kind: "str", text: text.slice(i + 1, end), pos: i });
      i = end + 1;
      continue;
    }
    let j = i;
    while (j < text.length && !/\s/.test(text[j]) && !"()[],".includes(text[j]) && !OPS.some((o) => text.startsWith(o, j))) j++;
    out.push({ kind: "word", text: text.slice(i, j), pos: i });
    i = j;
  }
  return out;
}

function scalar(tok: Token): unknown {
  if (tok.kind === "str") return tok.text;
  const t = tok.text;
  const lower = t.toLowerCase();
  if (lower === "true" || lower === "false") return lower === "true";
  if (lower === "null" || lower === "none") return null;
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return Number(t);
  return t;
}

const FIELD = /^[A-Za-z_][\w./-]*$/;
const SIMPLE_FIELDS = new Set([
  "state", "name", "display_name", "id", "run_id", "group", "job_type", "jobType", "tags", "notes",
  "sweep", "sweep_id", "host", "created_at", "createdAt", "runtime", "last_step", "entity", "project",
]);

/** Parentheses and `not` nested around one condition, at most (runyard.limits.MAX_FILTER_DEPTH). */
export const MAX_FILTER_DEPTH = 64;

export function parseFilter(text: string): Filter | null {
  if (!text.trim()) return null;
  const toks = tokenize(text);
  let p = 0;
  let depth = 0;
  const peek = () => toks[p];
  const isWord = (w: string) => peek() && peek().kind === "word" && peek().text.toLowerCase() === w;
  const expect = (t: string) => {
    const tok = peek();
    if (!tok || tok.text !== t) throw new FilterError(`expected '${t}' ${tok ? `at ${tok.pos + 1}` : "at the end"}`);
    p++;
  };

  function expr(): Filter {
    const parts = [term()];
    while (isWord("or")) {
      p++;
      parts.push(term());
    }
    return parts.length === 1 ? parts[0] : { $or: parts };
  }
  function term(): Filter {
    const parts = [factor()];
    while (isWord("and")) {
      p++;
      parts.push(factor());
    }
    return parts.length === 1 ? parts[0] : { $and: parts };
  }
  function factor(): Filter {
    const tok = peek();
    if (!tok) throw new FilterError("the filter ends too early: write FIELD OP VALUE, e.g. state = finished");
    const opens = isWord("not") || (tok.text === "(" && tok.kind === "punct");
    if (opens) {
      depth++;
      if (depth > MAX_FILTER_DEPTH) {
        throw new FilterError(
          `the filter is nested more than ${MAX_FILTER_DEPTH} levels deep (parentheses and 'not'): write it flatter, e.g. 'a = 1 and b = 2 and c = 3'`,
        );
      }
      p++;
      let inner: Filter;
      if (tok.text === "(") {
        inner = expr();
        expect(")");
      } else {
        inner = { $not: factor() };
      }
      depth--;
      return inner;
    }
    if (tok.kind !== "word" || !FIELD.test(tok.text)) throw new FilterError(`expected a field at ${tok.pos + 1}, got '${tok.text}'`);
    const field = tok.text;
    if (!(SIMPLE_FIELDS.has(field) || /^(config|summary|summary_metrics)\..+/.test(field))) {
      throw new FilterError(`unknown field '${field}': use state, name, group, tags, created_at, runtime, ..., config.<key> or summary.<key>`);
    }
    p++;
    if (isWord("in") || isWord("nin")) {
      const op = peek().text.toLowerCase() === "in" ? "$in" : "$nin";
      p++;
      expect("[");
      const values: unknown[] = [];
      while (peek() && peek().text !== "]") {
        const v = peek();
        if (v.kind === "punct") throw new FilterError(`expected a value at ${v.pos + 1}`);
        values.push(scalar(v));
        p++;
        if (peek() && peek().text === ",") p++;
      }
      expect("]");
      return { [field]: { [op]: values } };
    }
    const opTok = peek();
    if (!opTok || opTok.kind !== "op") throw new FilterError(`expected an operator (= != < <= > >= ~ in) after '${field}'`);
    p++;
    const valTok = peek();
    if (!valTok || valTok.kind === "punct" || valTok.kind === "op") throw new FilterError(`expected a value after '${field} ${opTok.text}'`);
    p++;
    if (opTok.text === "~") return { [field]: { $regex: valTok.text } };
    return { [field]: { [MONGO[opTok.text]]: scalar(valTok) } };
  }

  const out = expr();
  if (p < toks.length) throw new FilterError(`unexpected '${toks[p].text}' at ${toks[p].pos + 1}: join conditions with 'and' / 'or'`);
  return out;
}
