// The sam edit language and its regexp(7) matcher, against sam(1), regexp(7)
// and "A Tutorial for the Sam Command Language" (Pike): examples from those
// documents, sam's rules for empty matches and overlapping changes, error
// messages, and adversarial patterns on large bodies.

import t, { Test } from "tap";
import {
  applyChanges, edit, EditError, parseEdit, resolveAddress, runEdit, type EditState,
} from "../src/xenith/edit.js";
import { Budget, compileRegex, quoteRegex, Regex, RegexError } from "../src/xenith/regex.js";

const all = (s: string) => ({ q0: 0, q1: s.length });

/** Run src on text (dot defaults to the whole text) and return the new text, dot and output. */
function ed(text: string, src: string, dot = all(text), state?: EditState) {
  const r = edit(text, src, dot, { state });
  return { text: r.text, dot: r.dot, out: r.output, sel: r.text.slice(r.dot.q0, r.dot.q1) };
}

function fails(tt: Test, text: string, src: string, msg: RegExp, dot = all(text)) {
  tt.throws(() => runEdit(text, src, dot), msg, `${JSON.stringify(src)} fails with ${msg}`);
}

function m(re: string, text: string, from = 0, to = text.length) {
  const r = new Regex(re).match(text, from, to, { captures: true });
  return r && r.sub.map((s) => (s ? text.slice(s.q0, s.q1) : null));
}

// The tutorial's running example.
const manual =
  "This manual is organized in a rather haphazard manner.  The first\n" +
  "several sections were written hastily in an attempt to provide a\n" +
  "general introduction to the commands in Emacs and to try to show\n" +
  "the method in the madness that is the Emacs command structure.\n";

t.test("regexp(7): literals, metacharacters, classes", async (t) => {
  t.same(m("abc", "xxabcx"), ["abc"]);
  t.same(m("a.c", "abc a\nc"), ["abc"]);
  t.equal(m("a.c", "a\nc"), null, ". never matches newline");
  t.same(m("[^x]+", "ab\ncd"), ["ab"], "a negated class never matches newline");
  t.same(m("[a-cx]+", "zzbcaxq"), ["bcax"]);
  t.same(m("[\\]\\-^]+", "a]-^b"), ["]-^"], "] and - escaped, ^ not first");
  t.same(m("[.*+?()|$]+", "a.*+?()|$b"), [".*+?()|$"], "metacharacters stand for themselves in a class");
  t.same(m("\\.\\*\\\\", "a.*\\b"), [".*\\"], "escaped metacharacters and backslash");
  t.same(m("a\\nb", "a\nb"), ["a\nb"], "\\n is newline");
  t.same(m("[\\n]", "x\ny"), ["\n"], "\\n in a class");
  t.same(m("ab\\", "ab\\"), ["ab\\"], "a trailing backslash is itself");
  t.same(m("{TM}", "Emacs{TM}"), ["{TM}"], "braces are literals");
  t.same(m("a+", "baaa"), ["aaa"]);
  t.same(m("ba?c", "bc bac"), ["bc"]);
  t.same(m("x*", "abc"), [""], "an empty match at the start");
  t.same(m("(ab)+", "abababx"), ["ababab", "ab"]);
  t.same(m("a**", "aa"), ["aa"], "a repeated repetition");
  t.same(m("", "abc"), [""], "the empty pattern matches the empty string");
  const odd = "a.b*c+d?[e]f(g)h|i\\j^k$l\nm";
  t.same(m(quoteRegex(odd), "x" + odd + "x"), [odd], "quoteRegex");
});

t.test("regexp(7): leftmost-longest", async (t) => {
  t.same(m("a|ab", "abc"), ["ab"], "longest, not first alternative");
  t.same(m("ab|bcd", "abcd"), ["ab"], "leftmost before longest");
  t.same(m("abcd|c", "abcd"), ["abcd"], "a later, shorter match does not win");
  t.same(m("(a|ab)(c|bcd)(d*)", "abcd"), ["abcd", "ab", "c", "d"],
    "each part extends as far as possible without preventing a match of the rest");
  t.same(m("(a*)(a*)", "aaa"), ["aaa", "aaa", ""]);
  t.same(m("(a*)(ab)*(b*)", "aabb"), ["aabb", "aa", null, "bb"]);
  t.same(m("(a|b)*", "ab"), ["ab", "b"], "in a loop the last iteration counts");
  t.same(m("((a)|b)*", "ab"), ["ab", "b", null], "a group not in the last iteration is unset");
  t.same(m("(a)|b", "b"), ["b", null], "a group that took no part is null");
  t.same(m("(.*)c", "abcabc"), ["abcabc", "abcab"]);
  t.same(m("x(a|b)*y(a|b)", "xababyab"), ["xababya", "b", "a"]);
  t.same(m("(a|ab)(bc|c)", "abc"), ["abc", "ab", "c"]);
  t.same(m("(a*)*", "b"), ["", ""], "an empty iteration still sets the group");
  t.same(m("(a*)+", "b"), ["", ""]);
  t.same(m("(a+|b+)*", "aabba"), ["aabba", "a"]);
});

t.test("regexp(7): anchors are line anchors", async (t) => {
  t.same(m("^b", "ab\nb"), ["b"]);
  t.equal(new Regex("^b").match("ab\nb", 0, 4)!.q0, 3);
  t.same(m("a$", "ba\nc"), ["a"]);
  t.equal(new Regex("c$").match("a\nbc", 0, 4)!.q0, 3, "$ at the end of an unterminated last line");
  t.equal(new Regex("^").match("a\nb", 1, 3)!.q0, 2, "^ looks at the text before the range");
  t.equal(new Regex("a$").match("ab", 0, 1), null, "$ looks at the text after the range");
  t.same(m("^$", "a\n\nb"), [""]);
  t.equal(new Regex("^$").match("a\n\nb", 0, 4)!.q0, 2);
});

t.test("regexp(7): malformed patterns are errors naming the problem", async (t) => {
  const bad: [string, RegExp][] = [
    ["a(b", /unmatched '\('/], ["ab)", /unmatched '\)'/], ["a|", /missing operand for '\|'/],
    ["|a", /missing operand for '\|'/], ["a||b", /missing operand/], ["*a", /missing operand for '\*'/],
    ["a|+", /missing operand for '\+'/], ["()", /missing operand for '\('/], ["(|a)", /missing operand/],
    ["[abc", /missing '\]'/], ["[]", /empty class/], ["[z-a]", /not ascending/], ["[-a]", /'-' must be escaped/],
    ["[a-]", /range with no end/], ["x".repeat(9000), /too long/], ["(".repeat(600) + "a" + ")".repeat(600), /nested too deeply/],
  ];
  for (const [re, msg] of bad) t.throws(() => compileRegex(re), { name: "RegexError", message: msg }, re.slice(0, 20));
  t.throws(() => compileRegex("a|".repeat(4000) + "a"), { name: "RegexError", message: /too long \(\d+ instructions, limit 12000\)/ });
});

t.test("regexp(7): sam's searches with wrap-around, both directions", async (t) => {
  const re = new Regex("abc");
  const s = "abc-abc-";
  t.same([re.search(s, 0)!.q0, re.search(s, 1)!.q0, re.search(s, 5)!.q0], [0, 4, 0], "forward, wrapping");
  t.same([re.searchBackward(s, 8)!.q0, re.searchBackward(s, 6)!.q0, re.searchBackward(s, 2)!.q0], [4, 0, 4], "backward, wrapping");
  t.same(new Regex("bc").search("abcd", 2), { q0: 1, q1: 3, sub: [{ q0: 1, q1: 3 }] }, "the match may straddle the start");
  t.same(new Regex("b+").searchBackward("abbbc", 5)!, { q0: 1, q1: 4, sub: [{ q0: 1, q1: 4 }] }, "the longest match ending nearest");
  t.same(new Regex("a*b").searchBackward("xaab aab", 4)!.q0, 1, "backward leftmost-longest: earliest start for the end");
  const g = new Regex("(a+)(b+)").searchBackward("aabb ab", 4, { captures: true })!;
  t.same(g.sub, [{ q0: 0, q1: 4 }, { q0: 0, q1: 2 }, { q0: 2, q1: 4 }], "submatches in a backward search");
  t.equal(new Regex("x").search("abc", 1), null);
  t.equal(new Regex("x").searchBackward("abc", 1), null);
});

t.test("regexp(7): agrees with a brute-force leftmost-longest reference", async (t) => {
  // Random patterns over {a, b, newline} with anchors. The reference asks a
  // backtracking JS RegExp, translated to the same language, whether the
  // pattern can match exactly text[s, e) in place (lookbehind pins the end),
  // and takes the leftmost start, then the longest end; backward, the last
  // end, then the earliest start. sam's rules for where a search may start
  // apply: not at the end of a text ending in newline, and backward not at 0.
  let seed = 12345;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
  const gen = (d: number): string => {
    const k = d > 3 ? rnd(5) : rnd(10);
    switch (k) {
      case 0: return "a";
      case 1: return "b";
      case 2: return "[ab]";
      case 3: return ["^", "$", "."][rnd(3)];
      case 4: return "[^a]";
      case 5: case 6: return gen(d + 1) + gen(d + 1);
      case 7: return "(" + gen(d + 1) + "|" + gen(d + 1) + ")";
      default: return "(" + gen(d + 1) + ")" + "*+?"[rnd(3)];
    }
  };
  const js: Record<string, string> = {
    "[^a]": "[^a\\n]", ".": "[^\\n]", "^": "(?:^|(?<=\\n))", "$": "(?:(?=\\n)|(?![\\s\\S])(?<=[^\\n]))",
  };
  const toJS = (p: string) => p.replace(/\[\^a\]|\.|\^|\$/g, (tok) => js[tok]);
  let checked = 0;
  for (let i = 0; i < 500; i++) {
    const pat = gen(0);
    const text = Array.from({ length: rnd(8) }, () => "ab\n"[rnd(3)]).join("");
    const src = toJS(pat);
    const exact = (s: number, e: number) => {
      const r = new RegExp(`(?:${src})(?<=^[\\s\\S]{${e}})`, "y");
      r.lastIndex = s;
      return r.test(text);
    };
    const len = text.length;
    const maxStart = len === 0 || !text.endsWith("\n") ? len : len - 1;
    let want: number[] | null = null;
    for (let s = 0; s <= maxStart && !want; s++) for (let e = len; e >= s; e--) if (exact(s, e)) { want = [s, e]; break; }
    const re = new Regex(pat);
    const got = re.match(text, 0, len);
    const g = got ? [got.q0, got.q1] : null;
    if (JSON.stringify(g) !== JSON.stringify(want)) { t.fail(`/${pat}/ on ${JSON.stringify(text)}: got ${g}, want ${want}`); return; }
    let bwant: number[] | null = null;
    for (let e = len; e >= (len ? 1 : 0) && !bwant; e--) for (let s = 0; s <= e; s++) if (exact(s, e)) { bwant = [s, e]; break; }
    const bgot = re.matchBackward(text, 0, len);
    const bg = bgot ? [bgot.q0, bgot.q1] : null;
    if (JSON.stringify(bg) !== JSON.stringify(bwant)) { t.fail(`backward /${pat}/ on ${JSON.stringify(text)}: got ${bg}, want ${bwant}`); return; }
    checked++;
  }
  t.equal(checked, 500, "500 random patterns agree, forward and backward");
});

t.test("sam(1) addresses", async (t) => {
  const s = "one\ntwo\nthree\nfour\n";
  const a = (addr: string, dot = { q0: 0, q1: 0 }) => { const r = resolveAddress(s, addr, dot); return s.slice(r.q0, r.q1); };
  const at = (addr: string, dot = { q0: 0, q1: 0 }) => resolveAddress(s, addr, dot);
  t.equal(a("2"), "two\n", "line n");
  t.same(at("0"), { q0: 0, q1: 0 }, "line 0 is the start");
  t.same(at("$"), { q0: 19, q1: 19 }, "$ is the null string at the end");
  t.same(at("#5"), { q0: 5, q1: 5 }, "#n is the empty string after character n");
  t.same(at("#0"), { q0: 0, q1: 0 });
  t.same(at("#"), { q0: 1, q1: 1 }, "a missing number is 1");
  t.equal(a("2,3"), "two\nthree\n");
  t.equal(a(","), s, ", is 0,$");
  t.equal(a("3,"), "three\nfour\n", "a missing right side is $");
  t.equal(a(",2"), "one\ntwo\n", "a missing left side is 0");
  t.equal(a("/th/"), "th");
  t.equal(a("/o/", { q0: 4, q1: 7 }), "o", "forward from the end of dot");
  t.same(at("/o/", { q0: 16, q1: 16 }), { q0: 0, q1: 1 }, "wrapping to the start");
  t.same(at("?o?", { q0: 7, q1: 7 }), { q0: 6, q1: 7 }, "?re? searches backward from the start of dot");
  t.same(at("?o?", { q0: 6, q1: 7 }), { q0: 0, q1: 1 });
  t.same(at("?our?", { q0: 2, q1: 2 }), { q0: 15, q1: 18 }, "backward, wrapping to the end");
  t.same(at("?^?", { q0: 8, q1: 8 }), { q0: 4, q1: 4 }, "?^? is the start of the previous line");
  t.same(at("?^?", { q0: 0, q1: 0 }), { q0: 19, q1: 19 }, "?^? wrapping from the start: the end (as sam)");
  t.same(at("/^/", { q0: 19, q1: 19 }), { q0: 0, q1: 0 }, "/^/ never matches at the very end");
  t.same(at("?$?", { q0: 8, q1: 8 }), { q0: 7, q1: 7 });
  t.same(at("-/o/", { q0: 6, q1: 6 }), { q0: 0, q1: 1 }, "-/re/ is a backward search");
  t.same(at("-?o?", { q0: 1, q1: 1 }), { q0: 6, q1: 7 }, "-?re? is forward again");
  t.equal(a("+", { q0: 4, q1: 8 }), "three\n", "+ alone is +1");
  t.equal(a("-", { q0: 8, q1: 14 }), "two\n", "- alone is -1");
  t.equal(a("+2", { q0: 0, q1: 4 }), "three\n");
  t.equal(a("-2", { q0: 14, q1: 19 }), "two\n");
  t.equal(a("+-", { q0: 9, q1: 10 }), "three\n", "+- is the line holding the end of dot");
  t.equal(a("-+", { q0: 9, q1: 10 }), "three\n", "-+ is the line holding the start of dot");
  t.equal(a(".+1", { q0: 5, q1: 6 }), "three\n", "a line number after dot means +");
  t.same(at("2+#2"), { q0: 10, q1: 10 }, "char offsets relative to the end of line 2");
  t.same(at("2-#1"), { q0: 3, q1: 3 });
  t.equal(a("0/o/"), "o", "0/re/ is the first match in the file");
  t.same(at("$-/o/"), { q0: 15, q1: 16 }, "$-/re/ is the last");
  t.equal(a("0/two/,$-/th/"), "two\nth");
  t.same(at("/o/+/o/"), { q0: 6, q1: 7 }, "the second following match");
  t.same(at("/o//o/"), { q0: 6, q1: 7 }, "+ elided between two searches");
  t.same(at("/t/;/e/"), { q0: 4, q1: 12 }, "; evaluates the right side from the end of the left");
  t.throws(() => at("/t/,/e/"), /addresses out of order/, ", evaluates both sides from dot");
  t.same(at("/f/;/o/"), { q0: 14, q1: 16 });
  t.same(at("/t/,/o/", { q0: 4, q1: 4 }), { q0: 4, q1: 7 });
  t.equal(a("3;+"), "three\nfour\n", "; sets dot for the right side");
  t.equal(a("2;.,$"), "two\nthree\nfour\n");
  t.same(at("/x*/", { q0: 4, q1: 4 }), { q0: 5, q1: 5 }, "an empty match at the start of the search is skipped");
  t.same(at(""), { q0: 0, q1: 0 }, "the empty address is dot");
  t.same(at("  3 \n"), { q0: 8, q1: 14 }, "blanks around it are ignored");
  // line n is the n-th match of .*\n?
  t.same(resolveAddress("a\nb", "2", { q0: 0, q1: 0 }), { q0: 2, q1: 3 }, "an unterminated last line");
  t.same(resolveAddress("a\nb\n", "3", { q0: 0, q1: 0 }), { q0: 4, q1: 4 }, "the line after a final newline is empty");
  t.same(resolveAddress("", "1", { q0: 0, q1: 0 }), { q0: 0, q1: 0 });
});

t.test("sam(1) address errors", async (t) => {
  const s = "one\ntwo\n";
  const bad = (addr: string, msg: RegExp) => t.throws(() => resolveAddress(s, addr, { q0: 0, q1: 0 }), { name: "EditError", message: msg }, addr);
  bad("5", /address out of range/);
  bad("#99", /address out of range/);
  bad("-#1", /address out of range/);
  bad("-3", /address out of range/);
  bad("3,1", /addresses out of order/);
  bad("/zz/", /no match for \/zz\//);
  bad("?zz?", /no match for \?zz\?/);
  bad("1$", /bad address/);
  bad("..", /bad address/);
  bad("1,,2", /bad address/);
  bad("1 x", /bad address: unexpected 'x'/);
  bad("/a(/", /regular expression: unmatched '\(' in \/a\(\//);
  bad("//", /no previous regular expression/);
});

t.test("the tutorial: loops, conditionals, composition", async (t) => {
  t.equal(ed(manual, ",x/Emacs/ c/vi/").text, manual.replace(/Emacs/g, "vi"));
  t.equal(ed(manual, "0,$x/Emacs/c/vi/").text, manual.replace(/Emacs/g, "vi"));
  t.equal(ed(manual, ",g/Emacs/ c/vi/").text, "vi", "g runs on the whole range");
  t.equal(ed(manual, ",v/Emacs/ c/vi/").text, manual, "v does not");
  t.equal(ed(manual, ",x/Emacs/ x/E/ c/e/").text, manual.replace(/Emacs/g, "emacs"));
  const tm = ed(manual, "0,$x/Emacs/a/{TM}/").text;
  t.equal(tm, manual.replace(/Emacs/g, "Emacs{TM}"));
  t.equal(ed(tm, ",x/Emacs/ /{TM}/d").text, manual, "a search from each match");
  t.equal(ed(tm, "0,$x/Emacs/+-p").out, tm.split("\n").slice(2, 4).join("\n") + "\n");
  t.equal(ed(manual, "0,$x/Emacs/p").out, "EmacsEmacs");
  t.equal(ed(manual, ",x/.*\\n/ g/Emacs/p").out, manual.split("\n").slice(2, 4).join("\n") + "\n");
  t.equal(ed(manual, ",x g/Emacs/p").out, manual.split("\n").slice(2, 4).join("\n") + "\n", "x followed by a blank is x/.*\\n/");
  t.equal(ed("a Emacs b Emacs\n", ",x/Emacs/+-p").out, "a Emacs b Emacs\n".repeat(2), "+-p prints a line twice");

  const cmds = 'command name="append-to-file", key="[unbound]"\nTakes the contents.\n\n' +
    'command name="apropos", key="ESC-?"\nPrompts for a keyword.\n\nlast\n';
  t.equal(ed(cmds, ',x/(.+\\n)+/ g/command name="apropos"/p').out, 'command name="apropos", key="ESC-?"\nPrompts for a keyword.\n');

  const c = 'int n, nn;\nprintf("%d\\n", n);\nfor(n=0;;)\n';
  t.equal(ed(c, ",x/[a-zA-Z_][a-zA-Z_0-9]*/ g/n/ v/../ c/num/").text,
    'int num, nn;\nprintf("%d\\num", num);\nfor(num=0;;)\n', "the first cut changes \\n too");
  t.equal(ed(c, ",y/\\\\n/ x/[a-zA-Z_][a-zA-Z_0-9]*/ g/n/ v/../ c/num/").text,
    'int num, nn;\nprintf("%d\\n", num);\nfor(num=0;;)\n', "y protects \\n");

  const ft = "foo fred bar jimmy fredx fred\n";
  t.equal(ed(ft, ",x/[a-zA-Z]+/ g/fred/ v/...../ c/jim/").text, "foo jim bar jimmy fredx jim\n");
});

t.test("the tutorial: double spacing, indenting, and empty matches in x", async (t) => {
  const s = "one\ntwo\n\nfour\n";
  const dbl = "one\n\ntwo\n\n\n\nfour\n\n";
  t.equal(ed(s, ",x/\\n/ a/\\n/").text, dbl);
  t.equal(ed(s, ",x/\\n/ c/\\n\\n/").text, dbl);
  t.equal(ed(s, ",x/$/ a/\\n/").text, dbl, "$ loops: no extra match at the end after the last newline");
  t.equal(ed(s, ",x/^/ i/\\n/").text, "\none\n\ntwo\n\n\n\nfour\n", "^ loops: no extra match at the very end");
  t.equal(ed(s, ",x/\\n+/ a/\\n/").text, "one\n\ntwo\n\n\nfour\n\n");
  const ind = "\tone\n\ttwo\n\t\n\tfour\n";
  t.equal(ed(s, ",x/^/a/\t/").text, ind);
  t.equal(ed(s, ",x/^/c/\t/").text, ind);
  t.equal(ed(s, ",x/.*\\n/i/\t/").text, ind);
  t.equal(ed(ind, ",x/^\t/d").text, s);
  t.equal(ed("one\ntwo", ",x/$/ a/;/").text, "one;\ntwo;", "the end of an unterminated last line is a line end");
  t.equal(ed("one\ntwo", ",x/^/ a/>/").text, ">one\n>two");
  t.equal(ed("baaac", ",x/a*/ c/X/").text, "XbXcX", "an empty match next to the previous match is skipped");
  t.equal(ed("abc", ",x/x*/ c/-/").text, "-a-b-c-", "empty matches before every character and at the end");
  t.equal(ed("", ",x/x*/ c/-/").text, "-", "the empty range has one empty match");
  t.equal(ed("aaa", ",x/a*/ c/X/").text, "X");
  t.equal(ed("aXbXc", "#1,#4 x/X*/ c/-/").text, "a-b-c", "inside a range");
  t.equal(ed("one\ntwo\nthree\n", ",x p").out, "one\ntwo\nthree\n");
  t.equal(ed("one\ntwo\nthree", ",x c/L\\n/").text, "L\nL\nL\n", "x without a pattern: lines, the last one unterminated");
  t.equal(ed("one\ntwo\nthree\n", "#5,#9 x a/|/").text, "one\ntwo\n|t|hree\n", "x lines clipped to the range");
  const pp = ".PP\npara one\n.PP\npara two\nline\n.PP\nthree\n";
  t.equal(ed(pp, "-/.PP/,/.PP/-1 p", { q0: 20, q1: 20 }).out, ".PP\npara two\nline\n", "the tutorial's paragraph address");
  t.equal(ed(pp, "-/.PP/,/.PP/- p", { q0: 20, q1: 20 }).out, ".PP\npara two\nline\n");
});

t.test("DESIGN.md's example: x/func.*{[^}]*}/ x/foo/ c/bar/", async (t) => {
  const go = "func a() { foo(); }\nfunc b() {\n\tfoo()\n}\nfoo\n";
  t.equal(ed(go, "x/func.*{[^}]*}/ x/foo/ c/bar/").text, "func a() { bar(); }\nfunc b() {\n\tfoo()\n}\nfoo\n",
    "[^}] never matches a newline, so only the one-line body");
  t.equal(ed(go, "x/func[^{]*{([^}]|\\n)*}/ x/foo/ c/bar/").text, "func a() { bar(); }\nfunc b() {\n\tbar()\n}\nfoo\n",
    "bodies across lines with ([^}]|\\n)*");
});

t.test("y: the pieces between matches", async (t) => {
  t.equal(ed("a,b,,c", ",y/,/ c/X/").text, "X,X,X,X");
  t.equal(ed("a,b,", ",y/,/ c/X/").text, "X,X,X", "a final empty piece");
  t.equal(ed(",a", ",y/,/ c/X/").text, "X,X", "a first empty piece");
  t.equal(ed("a\nb\n", ",y/\\n/ p").out, "ab");
  t.equal(ed("abc", ",y/x/ c/X/").text, "X", "no match: the whole range");
  t.equal(ed("a1b22c", ",y/[0-9]+/ x/./ c/-/").text, "-1-22-");
});

t.test("g and v", async (t) => {
  const s = "apple\nbanana\ncherry\n";
  t.equal(ed(s, ",x g/an/ d").text, "apple\ncherry\n");
  t.equal(ed(s, ",x v/an/ d").text, "banana\n");
  t.equal(ed(s, ",x g/a/ v/n/ p").out, "apple\n");
  t.equal(ed(s, ",x g/a/\n").out, "apple\nbanana\n", "g with no command prints, like x");
  t.equal(ed(s, ",x g/^b/ s/a/A/g").text, "apple\nbAnAnA\ncherry\n", "g sets dot to the range, not the match");
  t.equal(ed("xy", "#1 v/./ a/!/").text, "x!y", "v on an empty range");
  t.equal(ed("xy", "#1 g/x*/ a/!/").text, "x!y", "g on an empty range with an empty match");
});

t.test("{} groups: every command sees the same dot; changes do not interfere", async (t) => {
  t.equal(ed("x Emacs y vi z", ",x/Emacs|vi/{\ng/Emacs/ c/vi/\ng/vi/ c/Emacs/\n}").text, "x vi y Emacs z",
    "exchanging Emacs and vi");
  t.equal(ed("Emacs vi Emacsen", ",x/[a-zA-Z]+/{\n\tg/Emacs/ v/....../ c/vi/\n\tg/vi/ v/.../ c/Emacs/\n}").text,
    "vi Emacs Emacsen");
  t.equal(ed("abc abc", ",x/b/ {\ni/</\na/>/\n}").text, "a<b>c a<b>c");
  t.equal(ed("abc", "{\ni/</\na/>/\n}").text, "<abc>", "the group's dot is the default address of each command");
  t.equal(ed("abc", "#1,#2 {\nc/X/\np\n}").out, "b", "p sees the original text");
  t.equal(ed("one\ntwo\n", ",x/o/ {\n=\n+-p\n}").out, "1\none\n2\ntwo\n", "= and +-p on each match");
  t.equal(ed("ab ab", ",x/ab/ {\nx/a/ {\na/1/\na/2/\n}\n{\nx/b/ c/B/\n}\n}").text, "a12B a12B", "nested groups");
  t.equal(ed("a", "{\n{\n{\na/!/\n}\n}\n}").text, "a!");
  t.equal(ed("abc", "{\na/1/\na/2/\n}").text, "abc12", "successive insertions at one place are catenated in order");
  t.equal(ed("abc", "#1 {\n  \n\t\np\n\n}").out, "", "blank lines in a group are ignored");
});

t.test("s: &, \\1-\\9, numbered and global", async (t) => {
  const line = "This manual is organized in a rather haphazard manner.  The first\n";
  let r = ed(manual, "1 s/haphazard/thoughtless/", { q0: 0, q1: 0 });
  t.equal(r.text.split("\n")[0], "This manual is organized in a rather thoughtless manner.  The first");
  t.equal(r.sel, r.text.split("\n")[0] + "\n", "dot is the modified range");
  r = ed(line, 's/T/"&&&&"/');
  t.equal(r.text, '"TTTT"his manual is organized in a rather haphazard manner.  The first\n');
  t.equal(ed(line, "s2/is/was/").text, "This manual was organized in a rather haphazard manner.  The first\n");
  t.equal(ed("That is it\n", "s/[a-zA-Z]/x/g").text, "xxxx xx xx\n");
  t.equal(ed("banana", "s2/a/o/g").text, "banono", "s2 with g changes the 2nd match and all after it");
  t.equal(ed("banana", "s3/a/o/").text, "banano");
  t.equal(ed("hello world", "s/([a-z]+) ([a-z]+)/\\2 \\1/").text, "world hello");
  t.equal(ed("abcdefghij", "s/(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)/\\9\\8\\7\\6\\5\\4\\3\\2\\1/").text, "ihgfedcba",
    "\\1 to \\9; the tenth group only groups");
  t.equal(ed("a.b", "s/\\./\\&\\\\/").text, "a&\\b", "\\& and \\\\ are literal");
  t.equal(ed("a/b", "s/\\//|/").text, "a|b", "\\/ is the delimiter");
  t.equal(ed("a/b", "s:/:\\::").text, "a:b", "any delimiter");
  t.equal(ed("a b", "s/ /\\n/").text, "a\nb", "\\n in the replacement");
  t.equal(ed("a b", "s/ //").text, "ab");
  t.equal(ed("a b", "s/ ").text, "ab", "elided delimiters");
  t.equal(ed("abc", "s/x*/-/g").text, "-a-b-c-", "empty matches");
  t.equal(ed("aaa", "s/a*/-/g").text, "-");
  t.equal(ed("good good good\n", ",s/good/bad/").text, "bad good good\n", "only the first in the range");
  t.equal(ed("good good\ngood good\n", ",x s/good/bad/").text, "bad good\nbad good\n", "the first on each line");
  t.equal(ed("ab", "s/(x)?b/[\\1]/").text, "a[]", "an unset group is empty");
  fails(t, "abc", "s/x/y/", /no substitution/);
  t.equal(ed("abc\nxyz\n", ",x s/x/X/").text, "abc\nXyz\n", "no error inside a loop");
});

t.test("a, i, c, d: text forms and dot", async (t) => {
  let r = ed("abc", "#1,#2 a/X/");
  t.same([r.text, r.sel], ["abXc", "X"], "dot is the new text");
  r = ed("abc", "#1,#2 i/X/");
  t.same([r.text, r.sel], ["aXbc", "X"]);
  r = ed("abc", "#1,#2 c/XY/");
  t.same([r.text, r.sel], ["aXYc", "XY"]);
  r = ed("abc", "#1,#2 d");
  t.same([r.text, r.dot], ["ac", { q0: 1, q1: 1 }], "dot is empty where the text was");
  t.equal(ed("abc", "$a|x\\|y|").text, "abcx|y");
  t.equal(ed("abc", "$ a /x/").text, "abcx", "blanks before the delimiter");
  t.equal(ed("abc", "$a/x\\ny\\\\z\\q/").text, "abcx\ny\\z\\q", "\\n, \\\\ and other backslashes in text");
  t.equal(ed("abc", "$a/x").text, "abcx", "the closing delimiter may be elided");
  t.equal(ed("one\ntwo\n", "1a\nnew\nlines\n.\n").text, "one\nnew\nlines\ntwo\n", "multi-line text ends at a lone .");
  t.equal(ed("one\ntwo\n", "1c\nnew\n").text, "new\ntwo\n", "or at the end of the edit");
  t.equal(ed("one\n", "$a\n..\n.\n").text, "one\n..\n", "only a lone . ends it");
  t.equal(ed("one\n", "$a\n.\n").text, "one\n", "empty text");
  r = ed("one\ntwo\n", "/one/\nd");
  t.same([r.text, r.dot], ["\ntwo\n", { q0: 0, q1: 0 }], "an address alone sets dot for the next command");
  r = ed("one two", "/two/");
  t.same(r.dot, { q0: 4, q1: 7 }, "an address alone sets dot");
});

t.test("m and t", async (t) => {
  t.equal(ed(manual, "/Emacs/+- m 0", { q0: 0, q1: 0 }).text,
    manual.split("\n")[2] + "\n" + manual.split("\n").filter((_, i) => i !== 2).join("\n"));
  t.equal(ed(manual, "/Emacs/+- t 0", { q0: 0, q1: 0 }).text, manual.split("\n")[2] + "\n" + manual);
  let r = ed("a\nb\nc\n", "1m$");
  t.same([r.text, r.sel], ["b\nc\na\n", "a\n"], "dot is the moved text");
  r = ed("a\nb\nc\n", "3m0");
  t.same([r.text, r.sel], ["c\na\nb\n", "c\n"]);
  t.equal(ed("a\nb\nc\n", "1t2").text, "a\nb\na\nc\n");
  t.equal(ed("a\nb\nc\n", "2m2").text, "a\nb\nc\n", "move to just after itself");
  t.equal(ed("a\nb\nc\n", "1,2t1").text, "a\na\nb\nb\nc\n", "copy into itself");
  t.equal(ed("a\nb\nc\n", ",x/[ac]/ t$").text, "a\nb\nc\nac", "copies at one place are catenated");
  fails(t, "a\nb\nc\n", "1,3m1", /addresses overlap/);
  fails(t, "a\nb\n", "1m", /bad address: destination expected after 'm'/);
  fails(t, "a\nb\n", "1m9", /address out of range/);
});

t.test("p and =", async (t) => {
  const s = "one\ntwo\nthree\n";
  t.equal(ed(s, "2p").out, "two\n");
  t.equal(ed(s, ",p").out, s);
  t.equal(ed(s, "2=").out, "2\n", "= prints the line number");
  t.equal(ed(s, "2,3=").out, "2,3\n", "and a range of lines");
  t.equal(ed(s, "/w/=").out, "2\n");
  t.equal(ed(s, "/o\\nt/=").out, "2,3\n");
  t.equal(ed(s, "$=").out, "4\n");
  t.equal(ed(s, "2=#").out, "#4,#8\n", "=# prints the character address");
  t.equal(ed(s, "#3=#").out, "#3\n");
  t.equal(ed(s, "2 = #").out, "#4,#8\n");
  t.same(ed(s, "2p").dot, { q0: 4, q1: 8 }, "p sets dot");
  t.same(ed(s, "#1 {\n2=\n}").dot, { q0: 1, q1: 1 }, "= does not");
  fails(t, s, "=x", /newline expected after '='/);
});

t.test("changes are computed against the original text and must be in sequence", async (t) => {
  const r = runEdit("abcdef", "{\n#1,#2 c/X/\n#4 a/Y/\n}", { q0: 0, q1: 6 });
  t.same(r.changes, [{ q0: 1, q1: 2, text: "X" }, { q0: 4, q1: 4, text: "Y" }], "sorted against the original");
  t.same(runEdit("aaa", ",x/a/ c/b/", all("aaa")).changes, [{ q0: 0, q1: 3, text: "bbb" }], "adjacent changes are merged");
  t.equal(ed("one\ntwo\n", "2d\n1p").out, "one\n", "a later command sees the original text");
  t.equal(ed("one\ntwo\n", "1d\n2d").text, "", "commands on separate lines are one transaction");
  fails(t, "one\ntwo\n", "2d\n1d", /changes not in sequence/);
  fails(t, "abc abc", "{\n,x/c/ d\n,x/b/ d\n}", /changes not in sequence/);
  fails(t, "abcdef", "{\n#1,#4 d\n#2,#5 d\n}", /changes not in sequence/);
  fails(t, "abcdef", "{\n#3 a/x/\n#2 a/y/\n}", /changes not in sequence/);
  fails(t, "abcdef", "{\n#3 a/x/\n#2,#3 d\n}", /changes not in sequence/);
  t.equal(ed("abcdef", "{\n#2,#3 d\n#3 a/x/\n}").text, "abxdef", "an insertion right after a deletion is in sequence");
  t.equal(ed("abcdef", "{\n#2 a/x/\n#2,#3 d\n}").text, "abxdef", "a deletion right after an insertion is in sequence");
  const before = "keep this";
  t.throws(() => runEdit(before, "{\n#1 a/x/\n#0 a/y/\n}", all(before)), EditError, "a failed edit returns nothing");
});

t.test("dot after an edit", async (t) => {
  t.same(ed("Emacs and Emacs\n", ",x/Emacs/ c/vi/").sel, "vi", "the last change");
  t.same(ed("Emacs and Emacs\n", ",x/Emacs/ c/vi/").dot, { q0: 7, q1: 9 });
  t.same(ed("a b a", ",x/a/").dot, { q0: 4, q1: 5 }, "no change: the last match");
  t.same(ed("a b a", ",x/z/ d", { q0: 1, q1: 2 }).dot, { q0: 1, q1: 2 }, "no match: dot is unchanged");
  t.same(ed("abc", "", { q0: 1, q1: 2 }).dot, { q0: 1, q1: 2 }, "an empty edit keeps dot");
  t.same(ed("abc", "s/b/XYZ/").sel, "aXYZc");
  t.same(ed("aXc", "{\n#0,#1 d\n#2,#3 c/YY/\n}").sel, "YY", "positions after earlier changes");
  t.same(ed("abc", "#3 a/1/\n#3 a/2/").sel, "2", "the last of several insertions at one place");
});

t.test("the last pattern: an empty regular expression", async (t) => {
  t.equal(ed("foo bar foo", "/foo/\n//d", { q0: 0, q1: 0 }).text, "foo bar ", "// is the last pattern");
  t.equal(ed("foo bar", "/o/\n,s//0/g").text, "f00 bar", "s//…/ uses it too");
  const state: EditState = {};
  ed("foo bar", "/bar/", { q0: 0, q1: 0 }, state);
  t.equal(state.lastPattern, "bar");
  t.same(ed("foo bar", "0//", { q0: 0, q1: 0 }, state).dot, { q0: 4, q1: 7 }, "kept across edits in state");
  fails(t, "abc", "//p", /no previous regular expression/);
});

t.test("malformed commands fail with a message naming the problem", async (t) => {
  const s = "one\ntwo\n";
  fails(t, s, "q", /unknown command 'q'/);
  fails(t, s, "w /tmp/x", /unknown command 'w'/);
  fails(t, s, "1,2k", /unknown command 'k'/);
  fails(t, s, "sxaxbx", /bad delimiter 'x'/);
  fails(t, s, "a1x1", /bad delimiter '1'/);
  fails(t, s, "x\\a\\ d", /bad delimiter '\\'/);
  fails(t, s, "s", /regular expression for 's' expected/);
  fails(t, s, "g", /regular expression for 'g' expected/);
  t.doesNotThrow(() => runEdit(s, "a", all(s)), "a and a newline is the multi-line form");
  fails(t, s, "d x", /newline expected \(saw 'x'\)/);
  fails(t, s, "s/o/0/gx", /newline expected \(saw 'x'\)/);
  fails(t, s, "p}", /newline expected \(saw '\}'\)/);
  fails(t, s, "}", /unmatched '\}'/);
  fails(t, s, "{\np\n", /missing '\}'/);
  fails(t, s, "{\nx/o/ }\n}", /command expected after 'x'/);
  fails(t, s, "x/o/ }", /unmatched '\}'/);
  fails(t, s, "1}", /'\}' takes no address/);
  fails(t, s, "x/a(/ p", /regular expression: unmatched '\(' in \/a\(\//);
  fails(t, s, "s/[/x/", /regular expression: missing '\]' in class/);
  fails(t, s, "5d", /address out of range/);
  fails(t, s, "3,1d", /addresses out of order/);
  fails(t, s, "/zzz/d", /no match for \/zzz\//);
  fails(t, s, "1$p", /bad address/);
  t.throws(() => runEdit(s, "{\n".repeat(600) + "}\n".repeat(600), all(s)), /nested too deeply/, "600 nested groups");
  t.throws(() => parseEdit("x/a/ q"), /unknown command 'q'/, "parseEdit reports syntax errors");
  t.doesNotThrow(() => parseEdit("x/a/ {\np\n}\n,s/a/b/g\n1,$-1 m 0"));
});

t.test("runEdit and applyChanges", async (t) => {
  const text = "alpha beta gamma\n";
  const r = runEdit(text, ",x/[a-z]+/ g/a$/ c/<&>/", all(text));
  t.same(r.changes, [{ q0: 11, q1: 16, text: "<&>" }], "$ is a line anchor, even within a word's range; c text has no &");
  t.equal(applyChanges(text, r.changes), "alpha beta <&>\n");
  t.equal(ed("a\u{1F600}b", "#1,#3 d").text, "ab", "offsets count UTF-16 code units");
  t.throws(() => applyChanges("abc", [{ q0: 2, q1: 3, text: "" }, { q0: 0, q1: 1, text: "" }]), /not in sequence/);
  t.same(runEdit("abc", "p", { q0: 5, q1: 9 }).dot, { q0: 3, q1: 3 }, "a dot beyond the text is clamped");
  t.same(runEdit("abc", [], { q0: 1, q1: 2 }).dot, { q0: 1, q1: 2 }, "parsed commands are accepted");
});

t.test("adversarial patterns on large bodies finish (linear-time matcher)", async (t) => {
  const MiB = 1 << 20;
  const as = "a".repeat(MiB);
  t.throws(() => runEdit(as, "/(a*)*b/", { q0: 0, q1: 0 }), /no match/, "(a*)*b on 1 MiB of a: no match");
  t.same(runEdit(as, ",x/(a*)*b/ d", all(as)).changes, [], "x loop: nothing to change");
  const ab = as + "b";
  t.same(runEdit(ab, ",x/(a*)*b/ c/X/", all(ab)).changes, [{ q0: 0, q1: ab.length, text: "X" }], "one match, all of it");
  const xs = "x".repeat(MiB);
  t.same(runEdit(xs, ",x/(x+x+)+y/ d", all(xs)).changes, [], "(x+x+)+y with no y");
  const xy = xs + "y";
  const r = runEdit(xy, ",s/(x+x+)+y/[\\1]/", all(xy));
  t.equal(r.changes.length, 1);
  t.equal(r.changes[0].q1 - r.changes[0].q0, xy.length, "the whole body matched");
  t.match(r.changes[0].text, /^\[x+\]$/, "with the last iteration of the group");
  const lines = "ab\n".repeat(100000);
  t.equal(ed(lines, ",x/^(a|b|ab)*$/ c/z/").text, "z\n".repeat(100000), "100000 anchored matches");
});

t.test("edits that would take quadratic time fail with a message", async (t) => {
  const body = "a".repeat(256 * 1024);
  // Each match of a|a.*b is one character, but the a.*b branch scans to the
  // end of the body every time: quadratic, so the budget stops it.
  t.throws(() => runEdit(body, ",x/a|a.*b/ c/X/", all(body)), { name: "EditError", message: /too much work/ });
  const b50 = body.slice(0, 50000);
  t.throws(() => runEdit(b50, ",x/./ ,g/zzz/ d", all(b50)), { name: "EditError", message: /too much work/ },
    "a search of the whole body for every character");
  t.throws(() => runEdit(body.slice(0, 20000), ",x/./ ,p", all(body.slice(0, 20000)), { maxOutput: 1e6 }),
    { message: /output too large/ });
  t.throws(() => runEdit("ab", ",x/./ ,x/./ ,x/./ ,x/./ ,x/./ p", all("ab"), { budget: new Budget(100) }), /too much work/,
    "a small explicit budget");
  t.throws(() => runEdit(body, ",x/./ t$", all(body), { maxInsert: 1000 }), /edit too large/);
});
