//! Conditions written in CEL (the Common Expression Language): the `when`
//! of policy rules, and argument constraints on tokens. They are parsed
//! once, when the scenario (or the token) is loaded, and checked to name
//! only the variables the engine provides, so a typo such as `arg.amount`
//! is a load error rather than a rule that fails on every call.

use std::fmt;
use std::sync::Arc;

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue, operators};

/// A variable a condition can read. The engine binds exactly these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConditionVariable {
    /// `tenant`: the tenant's name (string).
    Tenant,
    /// `token`: the session's token id, `""` when there is none (string).
    Token,
    /// `tool`: the tool being called (string).
    Tool,
    /// `args`: the call's arguments (map).
    Args,
    /// `upstream`: the upstream the tool forwards to, `""` when none (string).
    Upstream,
    /// `mode`: `stub`, `live`, `record` or `replay` (string).
    Mode,
    /// `calls`: the run's earlier calls, oldest first, each a map
    /// `{tool: string, args: map, error: bool}`.
    Calls,
    /// `counts`: earlier calls per tool name (map of string to int).
    Counts,
}

impl ConditionVariable {
    /// Every variable, in the order documentation lists them.
    pub const ALL: [ConditionVariable; 8] = [
        ConditionVariable::Tenant,
        ConditionVariable::Token,
        ConditionVariable::Tool,
        ConditionVariable::Args,
        ConditionVariable::Upstream,
        ConditionVariable::Mode,
        ConditionVariable::Calls,
        ConditionVariable::Counts,
    ];

    /// The name expressions use.
    pub fn name(self) -> &'static str {
        match self {
            ConditionVariable::Tenant => "tenant",
            ConditionVariable::Token => "token",
            ConditionVariable::Tool => "tool",
            ConditionVariable::Args => "args",
            ConditionVariable::Upstream => "upstream",
            ConditionVariable::Mode => "mode",
            ConditionVariable::Calls => "calls",
            ConditionVariable::Counts => "counts",
        }
    }

    /// The variable with this name.
    pub fn from_name(name: &str) -> Option<ConditionVariable> {
        ConditionVariable::ALL
            .into_iter()
            .find(|v| v.name() == name)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// Identifiers that name CEL types rather than variables (`type(x) == int`).
const TYPE_NAMES: [&str; 11] = [
    "bool",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
    "dyn",
];

/// A parsed and checked CEL condition. Cloning is cheap (the program is
/// shared).
#[derive(Clone)]
pub struct CelCondition {
    source: Arc<str>,
    program: Arc<cel::Program>,
    uses: u16,
    count_keys: Arc<[String]>,
}

impl CelCondition {
    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The compiled program, for the engine to execute.
    pub fn program(&self) -> &cel::Program {
        &self.program
    }

    /// Whether the expression reads `variable`; the engine binds only the
    /// variables a condition reads (building `calls` costs the most).
    pub fn uses(&self, variable: ConditionVariable) -> bool {
        self.uses & variable.bit() != 0
    }

    /// The variables the expression reads.
    pub fn variables(&self) -> impl Iterator<Item = ConditionVariable> + '_ {
        ConditionVariable::ALL.into_iter().filter(|v| self.uses(*v))
    }

    /// Tool names the expression looks up in `counts` by a literal key
    /// (`counts.send_email`, `counts["send_email"]`). The engine gives them
    /// a count of 0 until they are called, so such a lookup never fails.
    pub fn count_keys(&self) -> &[String] {
        &self.count_keys
    }
}

impl fmt::Debug for CelCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CelCondition").field(&self.source).finish()
    }
}

/// Parses a CEL condition and checks that it reads only the variables of
/// [`ConditionVariable`]. The error says what is wrong and where in the
/// expression, for a message that already names the file and line.
pub fn compile_condition(source: &str) -> Result<CelCondition, String> {
    if source.trim().is_empty() {
        return Err(
            "the condition is empty; write a CEL expression such as `args.amount > 500`".to_owned(),
        );
    }
    // The parser and the interpreter recurse over the expression: bounds
    // on its size and nesting keep a hostile condition from exhausting a
    // thread's stack.
    if source.len() > MAX_CONDITION_BYTES {
        return Err(format!(
            "the condition is {} bytes long; conditions are limited to {MAX_CONDITION_BYTES} bytes",
            source.len()
        ));
    }
    let mut depth = 0usize;
    for b in source.bytes() {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_CONDITION_DEPTH {
                    return Err(format!(
                        "the condition nests brackets more than {MAX_CONDITION_DEPTH} deep"
                    ));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let program = cel::Program::compile(source).map_err(|errors| {
        let multiline = source.trim_end().contains('\n');
        let described: Vec<String> = errors
            .errors
            .iter()
            .take(3)
            .map(|e| {
                let at = if multiline {
                    format!("line {}, column {}", e.pos.0, e.pos.1)
                } else {
                    format!("column {}", e.pos.1)
                };
                format!("{} (at {at})", e.msg)
            })
            .collect();
        format!(
            "`{}` is not a valid CEL expression: {}",
            source.trim(),
            described.join("; ")
        )
    })?;
    let root = program.expression();
    if let Expr::Literal(literal) = &root.expr
        && !matches!(literal, LiteralValue::Boolean(_))
    {
        return Err(format!(
            "`{}` is a constant, not a condition; write an expression that is true or false",
            source.trim()
        ));
    }
    let mut walk = Walk::default();
    walk.expr(root, &mut Vec::new());
    if walk.deepest > MAX_CONDITION_DEPTH {
        return Err(format!(
            "the condition nests more than {MAX_CONDITION_DEPTH} operations deep; split it into simpler rules"
        ));
    }
    if let Some((name, id)) = walk.unknown.first() {
        let at = program
            .source_info()
            .offset_for(*id)
            .map(|(start, _)| position(source, start as usize))
            .map(|(line, column)| {
                if source.trim_end().contains('\n') {
                    format!(" (at line {line}, column {column})")
                } else {
                    format!(" (at column {column})")
                }
            })
            .unwrap_or_default();
        let hint = suggestion(name)
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        let names: Vec<&str> = ConditionVariable::ALL.iter().map(|v| v.name()).collect();
        return Err(format!(
            "`{name}`{at} is not a variable conditions can read{hint}; they are {}",
            names.join(", ")
        ));
    }
    Ok(CelCondition {
        source: Arc::from(source),
        program: Arc::new(program),
        uses: walk.uses,
        count_keys: walk.count_keys.into(),
    })
}

/// Line and column (1-based) of a character offset.
fn position(source: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut column = 1;
    for c in source.chars().take(offset) {
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

/// The known variable a misspelt name most likely meant: one edit away,
/// or the same but for a trailing or missing `s`.
fn suggestion(name: &str) -> Option<&'static str> {
    ConditionVariable::ALL
        .iter()
        .map(|v| v.name())
        .find(|known| edit_distance(name, known) <= 1 + usize::from(known.len() > 5))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// The longest condition accepted, in bytes.
pub const MAX_CONDITION_BYTES: usize = 2048;

/// The deepest nesting of brackets, or of operations in the parsed
/// expression, accepted.
pub const MAX_CONDITION_DEPTH: usize = 64;

/// What a walk over the expression found.
#[derive(Default)]
struct Walk {
    /// How deep the walk is now, and the deepest it went.
    depth: usize,
    deepest: usize,
    uses: u16,
    unknown: Vec<(String, u64)>,
    count_keys: Vec<String>,
}

impl Walk {
    /// Visits `e`; `bound` holds the names comprehensions (`map`, `filter`,
    /// `exists`, ...) bind around it, which are not free variables.
    fn expr(&mut self, e: &IdedExpr, bound: &mut Vec<String>) {
        // Past the limit the condition is refused anyway: stop descending.
        if self.depth > MAX_CONDITION_DEPTH {
            self.deepest = self.deepest.max(self.depth);
            return;
        }
        self.depth += 1;
        self.deepest = self.deepest.max(self.depth);
        self.visit(e, bound);
        self.depth -= 1;
    }

    fn visit(&mut self, e: &IdedExpr, bound: &mut Vec<String>) {
        match &e.expr {
            Expr::Unspecified | Expr::Literal(_) => {}
            Expr::Ident(name) => self.ident(name, e.id, bound),
            Expr::Select(select) => {
                if let Expr::Ident(name) = &select.operand.expr
                    && name == "counts"
                    && !bound.contains(name)
                {
                    self.count_key(&select.field);
                }
                self.expr(&select.operand, bound);
            }
            Expr::Call(call) => {
                if call.func_name == operators::INDEX
                    && let [target, key] = call.args.as_slice()
                    && let Expr::Ident(name) = &target.expr
                    && name == "counts"
                    && !bound.contains(name)
                    && let Expr::Literal(LiteralValue::String(key)) = &key.expr
                {
                    self.count_key(key.inner());
                }
                if let Some(target) = &call.target {
                    self.expr(target, bound);
                }
                for arg in &call.args {
                    self.expr(arg, bound);
                }
            }
            Expr::Comprehension(comprehension) => {
                self.expr(&comprehension.iter_range, bound);
                self.expr(&comprehension.accu_init, bound);
                let before = bound.len();
                bound.push(comprehension.iter_var.clone());
                if let Some(second) = &comprehension.iter_var2 {
                    bound.push(second.clone());
                }
                bound.push(comprehension.accu_var.clone());
                self.expr(&comprehension.loop_cond, bound);
                self.expr(&comprehension.loop_step, bound);
                self.expr(&comprehension.result, bound);
                bound.truncate(before);
            }
            Expr::List(list) => {
                for element in &list.elements {
                    self.expr(element, bound);
                }
            }
            Expr::Map(map) => self.entries(map.entries.iter().map(|e| &e.expr), bound),
            Expr::Struct(s) => self.entries(s.entries.iter().map(|e| &e.expr), bound),
        }
    }

    fn entries<'e>(
        &mut self,
        entries: impl Iterator<Item = &'e EntryExpr>,
        bound: &mut Vec<String>,
    ) {
        for entry in entries {
            match entry {
                EntryExpr::StructField(field) => self.expr(&field.value, bound),
                EntryExpr::MapEntry(entry) => {
                    self.expr(&entry.key, bound);
                    self.expr(&entry.value, bound);
                }
            }
        }
    }

    fn ident(&mut self, name: &str, id: u64, bound: &[String]) {
        // `@`-names are the accumulators macros introduce.
        if name.starts_with('@') || bound.iter().any(|b| b == name) {
            return;
        }
        match ConditionVariable::from_name(name) {
            Some(variable) => self.uses |= variable.bit(),
            None if TYPE_NAMES.contains(&name) => {}
            None => self.unknown.push((name.to_owned(), id)),
        }
    }

    fn count_key(&mut self, key: &str) {
        if !self.count_keys.iter().any(|k| k == key) {
            self.count_keys.push(key.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_ok(source: &str, uses: &[&str]) {
        let condition = compile_condition(source).unwrap_or_else(|e| panic!("{source}: {e}"));
        let got: Vec<&str> = condition.variables().map(|v| v.name()).collect();
        assert_eq!(got, uses, "{source}");
    }

    fn check_err(source: &str, fragment: &str) {
        let err = compile_condition(source).expect_err(source);
        assert!(err.contains(fragment), "{source}: {err}");
    }

    #[test]
    fn conditions_that_compile() {
        check_ok("args.amount > 500", &["args"]);
        check_ok("true", &[]);
        check_ok("size(calls) > 3 && tool == 'x'", &["tool", "calls"]);
        check_ok(
            r#"sum(calls.filter(c, c.tool == "issue_refund").map(c, c.args.amount)) + args.amount > 1000"#,
            &["args", "calls"],
        );
        check_ok("calls.exists(c, c.error)", &["calls"]);
        check_ok("type(args.n) == int", &["args"]);
        check_ok(
            "tenant == 'a' && token != '' && upstream == '' && mode == 'live'",
            &["tenant", "token", "upstream", "mode"],
        );
        check_ok("has(args.amount) && args.amount > 1.5", &["args"]);
        check_ok("counts.send_email < 3", &["counts"]);
    }

    #[test]
    fn conditions_too_big_or_too_deep_for_the_stack_are_refused() {
        // 10,000 terms once overflowed a test thread's stack in the parser.
        let long = vec!["1"; 10_000].join(" + ") + " > 0";
        check_err(&long, "limited to 2048 bytes");
        let chain = vec!["1"; 500].join("+") + ">0";
        check_err(&chain, "nests more than 64 operations deep");
        let parens = format!("{}true{}", "(".repeat(100), ")".repeat(100));
        check_err(&parens, "nests brackets more than 64 deep");
        check_ok(&(vec!["args.a"; 20].join(" + ") + " > 0"), &["args"]);
    }

    #[test]
    fn conditions_that_do_not() {
        check_err("", "empty");
        check_err("args.amount >", "not a valid CEL expression");
        check_err("args.amount >", "at column 14");
        check_err("arg.amount > 500", "`arg` (at column 1) is not a variable");
        check_err("arg.amount > 500", "did you mean `args`?");
        check_err("arg.amount > 500", "they are tenant, token, tool, args");
        check_err("args.amount > limit", "`limit` (at column 15)");
        check_err("calls.map(c, d.tool)", "`d`");
        // A comprehension's variable is not bound outside it.
        check_err("calls.exists(c, c.error) && c.error", "`c`");
        check_err("'yes'", "is a constant, not a condition");
        check_err("args.a > 1 &&\n  nope", "(at line 2, column 3)");
    }

    #[test]
    fn literal_count_keys_are_collected() {
        let condition = compile_condition(
            r#"counts.send_email + counts["issue_refund"] > 2 && counts.send_email > 0"#,
        )
        .expect("compiles");
        assert_eq!(condition.count_keys(), ["send_email", "issue_refund"]);
    }
}
