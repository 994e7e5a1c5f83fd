//! Python's arithmetic operators on the Python values of templates. dbt's Jinja
//! runs on Python objects, so `run_started_at - modules.datetime.timedelta(days=1)`,
//! `date + timedelta`, `datetime - datetime`, `timedelta * 2` and `set_a - set_b`
//! work there; minijinja has no operator overloading for objects.
//!
//! Owns the rewrite of a template's binary `+`, `-`, `*` and unary `-` (found
//! with minijinja's own parser, so precedence, strings, filters and tests are
//! read exactly as the template compiles) into calls `__py_add(a, b)`,
//! `__py_sub(a, b)`, `__py_mul(a, b)`, `__py_neg(a)` — only text is inserted and
//! the operator replaced by a comma, never a line break, so every error keeps its
//! line — and those functions: Python's operation when an operand is one of our
//! Python values (the `modules.datetime` values, `set()`), minijinja's own
//! operator otherwise, so numbers, strings and lists give what they always gave
//! (results and errors). Operations between two literals are left as they are.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use minijinja::machinery::{ast, parse, parse_expr};
use minijinja::value::ValueKind;
use minijinja::{Environment, Error, ErrorKind, Expression, Value};

use super::{pymodules, pyset};

/// An operator the rewrite turns into a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Add,
    Sub,
    Mul,
    Neg,
}

impl Op {
    const ALL: [Op; 4] = [Op::Add, Op::Sub, Op::Mul, Op::Neg];

    fn symbol(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub | Op::Neg => "-",
            Op::Mul => "*",
        }
    }

    /// The call the rewrite opens in place of the operator.
    fn call_open(self) -> &'static str {
        match self {
            Op::Add => "__py_add(",
            Op::Sub => "__py_sub(",
            Op::Mul => "__py_mul(",
            Op::Neg => "__py_neg(",
        }
    }

    fn function(self) -> &'static str {
        self.call_open().trim_end_matches('(')
    }

    /// minijinja's own operator on two variables (one for `-a`).
    fn plain_expression(self) -> &'static str {
        match self {
            Op::Add => "a + b",
            Op::Sub => "a - b",
            Op::Mul => "a * b",
            Op::Neg => "-a",
        }
    }
}

/// Registers the functions the rewrite calls.
pub(super) fn register(env: &mut Environment<'_>) {
    for op in Op::ALL {
        if op == Op::Neg {
            env.add_function(op.function(), move |a: Value| apply(op, &a, None));
        } else {
            env.add_function(op.function(), move |a: Value, b: Value| {
                apply(op, &a, Some(&b))
            });
        }
    }
}

/// `a op b` (`op a` when `b` is `None`) as Python does it for our Python values,
/// as minijinja does otherwise.
fn apply(op: Op, a: &Value, b: Option<&Value>) -> Result<Value, Error> {
    if let Some(r) = pymodules::arith(op, a, b) {
        return r;
    }
    if let Some(r) = pyset::arith(op, a, b) {
        return r;
    }
    plain(op, a, b)
}

/// minijinja's operator: integers and floats directly, everything else through
/// minijinja itself (its operators are not public), so results and errors stay
/// exactly what the operator gives.
fn plain(op: Op, a: &Value, b: Option<&Value>) -> Result<Value, Error> {
    if let Some(b) = b {
        if let Some(v) = numbers(op, a, b) {
            return Ok(v);
        }
    }
    static ENV: LazyLock<Environment<'static>> = LazyLock::new(Environment::new);
    static EXPRESSIONS: LazyLock<Vec<Expression<'static, 'static>>> = LazyLock::new(|| {
        Op::ALL
            .iter()
            .filter_map(|op| ENV.compile_expression(op.plain_expression()).ok())
            .collect()
    });
    let Some(expr) = EXPRESSIONS.get(op as usize) else {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("internal: no expression for {}", op.symbol()),
        ));
    };
    let mut ctx = BTreeMap::new();
    ctx.insert("a".to_string(), a.clone());
    if let Some(b) = b {
        ctx.insert("b".to_string(), b.clone());
    }
    // The error gets the template's file and line from the caller, not the
    // expression's.
    expr.eval(Value::from_object(ctx))
        .map_err(|e| match e.detail() {
            Some(detail) => Error::new(e.kind(), detail.to_string()),
            None => Error::from(e.kind()),
        })
}

/// The common case of two integers or floats, as minijinja computes it (an
/// integer result that does not fit an `i64` goes the slow way).
fn numbers(op: Op, a: &Value, b: &Value) -> Option<Value> {
    if a.kind() != ValueKind::Number || b.kind() != ValueKind::Number {
        return None;
    }
    if a.is_integer() && b.is_integer() {
        let (x, y) = (a.as_i64()?, b.as_i64()?);
        return Some(Value::from(match op {
            Op::Add => x.checked_add(y)?,
            Op::Sub => x.checked_sub(y)?,
            Op::Mul => x.checked_mul(y)?,
            Op::Neg => return None,
        }));
    }
    let float = |v: &Value| -> Option<f64> {
        if v.is_integer() {
            v.as_i64().map(|i| i as f64)
        } else {
            f64::try_from(v.clone()).ok()
        }
    };
    let (x, y) = (float(a)?, float(b)?);
    Some(Value::from(match op {
        Op::Add => x + y,
        Op::Sub => x - y,
        Op::Mul => x * y,
        Op::Neg => return None,
    }))
}

/// Python's `TypeError` for an operator its operands do not support.
pub(super) fn type_error(op: Op, a: &Value, b: Option<&Value>) -> Error {
    let msg = match b {
        Some(b) => format!(
            "TypeError: unsupported operand type(s) for {}: '{}' and '{}'",
            op.symbol(),
            python_type(a),
            python_type(b)
        ),
        None => format!(
            "TypeError: bad operand type for unary {}: '{}'",
            op.symbol(),
            python_type(a)
        ),
    };
    Error::new(ErrorKind::InvalidOperation, msg)
}

/// The name of a value's Python type, as Python's messages write it.
fn python_type(v: &Value) -> &'static str {
    if let Some(name) = pymodules::type_name(v).or_else(|| pyset::type_name(v)) {
        return name;
    }
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if v.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Bytes => "bytes",
        ValueKind::Seq if v.is_tuple() => "tuple",
        ValueKind::Seq => "list",
        ValueKind::Map => "dict",
        _ => "object",
    }
}

/// Rewrites the operators of a template (see the module's comment); the source
/// itself when it has none, or does not parse (compiling it reports that).
pub(super) fn rewrite(src: &str) -> Cow<'_, str> {
    if !has_operator_in_code(src) {
        return Cow::Borrowed(src);
    }
    let Ok(tree) = parse(src, "<template>", Default::default()) else {
        return Cow::Borrowed(src);
    };
    let mut edits = Edits::new(src);
    edits.stmt(&tree);
    edits.apply()
}

/// Rewrites the operators of one expression (a test argument's
/// `{{ expression }}`).
pub(super) fn rewrite_expression(src: &str) -> Cow<'_, str> {
    if !src.contains(['+', '-', '*']) {
        return Cow::Borrowed(src);
    }
    let Ok(tree) = parse_expr(src) else {
        return Cow::Borrowed(src);
    };
    let mut edits = Edits::new(src);
    edits.expr(&tree);
    edits.apply()
}

/// Whether a `+`, `-` or `*` appears inside `{{ }}` or `{% %}` other than as
/// whitespace control: a cheap test that spares the parse of most templates.
/// (One inside a string literal also answers yes; the parse then finds nothing.)
fn has_operator_in_code(src: &str) -> bool {
    let b = src.as_bytes();
    let mut i = 0;
    while let Some(at) = src[i..].find('{').map(|p| p + i) {
        let kind = b.get(at + 1).copied();
        let close = match kind {
            Some(b'{') => "}}",
            Some(b'%') => "%}",
            Some(b'#') => "#}",
            _ => {
                i = at + 1;
                continue;
            }
        };
        let start = at + 2;
        let Some(end) = src[start..].find(close).map(|p| p + start) else {
            return kind != Some(b'#') && src[start..].contains(['+', '-', '*']);
        };
        if kind != Some(b'#') {
            let inner = src[start..end]
                .strip_prefix(['-', '+'])
                .unwrap_or(&src[start..end]);
            let inner = inner.strip_suffix(['-', '+']).unwrap_or(inner);
            if inner.contains(['+', '-', '*']) {
                return true;
            }
        }
        i = end + 2;
    }
    false
}

/// The text insertions (and operator replacements) of a rewrite.
struct Edits<'s> {
    src: &'s str,
    /// (byte offset, bytes replaced, text inserted), in the order made: at one
    /// offset an outer call opens before an inner one and closes after it.
    list: Vec<(usize, usize, &'static str)>,
}

impl<'s> Edits<'s> {
    fn new(src: &'s str) -> Edits<'s> {
        Edits {
            src,
            list: Vec::new(),
        }
    }

    fn apply(mut self) -> Cow<'s, str> {
        if self.list.is_empty() {
            return Cow::Borrowed(self.src);
        }
        self.list.sort_by_key(|e| e.0);
        let mut out = String::with_capacity(self.src.len() + 16 * self.list.len());
        let mut copied = 0;
        for (at, replaced, text) in self.list {
            out.push_str(&self.src[copied..at]);
            out.push_str(text);
            copied = at + replaced;
        }
        out.push_str(&self.src[copied..]);
        Cow::Owned(out)
    }

    fn stmts(&mut self, body: &[ast::Stmt<'_>]) {
        for s in body {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &ast::Stmt<'_>) {
        use ast::Stmt;
        match s {
            Stmt::Template(t) => self.stmts(&t.children),
            Stmt::EmitExpr(e) => self.expr(&e.expr),
            Stmt::EmitRaw(_) | Stmt::Continue(_) | Stmt::Break(_) => {}
            Stmt::ForLoop(f) => {
                self.expr(&f.iter);
                self.opt(f.filter_expr.as_ref());
                self.stmts(&f.body);
                self.stmts(&f.else_body);
            }
            Stmt::IfCond(c) => {
                self.expr(&c.expr);
                self.stmts(&c.true_body);
                self.stmts(&c.false_body);
            }
            Stmt::WithBlock(w) => {
                for (_, e) in &w.assignments {
                    self.expr(e);
                }
                self.stmts(&w.body);
            }
            Stmt::Set(s) => self.expr(&s.expr),
            Stmt::SetBlock(s) => {
                self.opt(s.filter.as_ref());
                self.stmts(&s.body);
            }
            Stmt::AutoEscape(a) => {
                self.expr(&a.enabled);
                self.stmts(&a.body);
            }
            Stmt::FilterBlock(f) => {
                self.expr(&f.filter);
                self.stmts(&f.body);
            }
            Stmt::Block(b) => self.stmts(&b.body),
            Stmt::Import(i) => self.expr(&i.expr),
            Stmt::FromImport(i) => self.expr(&i.expr),
            Stmt::Extends(e) => self.expr(&e.name),
            Stmt::Include(i) => self.expr(&i.name),
            Stmt::Macro(m) => self.macro_decl(m),
            Stmt::CallBlock(c) => {
                self.call(&c.call);
                self.macro_decl(&c.macro_decl);
            }
            Stmt::Do(d) => self.call(&d.call),
        }
    }

    fn macro_decl(&mut self, m: &ast::Macro<'_>) {
        self.exprs(&m.defaults);
        self.stmts(&m.body);
    }

    fn call(&mut self, c: &ast::Call<'_>) {
        self.expr(&c.expr);
        self.args(&c.args);
    }

    fn args(&mut self, args: &[ast::CallArg<'_>]) {
        for a in args {
            match a {
                ast::CallArg::Pos(e)
                | ast::CallArg::Kwarg(_, e)
                | ast::CallArg::PosSplat(e)
                | ast::CallArg::KwargSplat(e) => self.expr(e),
            }
        }
    }

    fn exprs(&mut self, items: &[ast::Expr<'_>]) {
        for e in items {
            self.expr(e);
        }
    }

    fn opt(&mut self, e: Option<&ast::Expr<'_>>) {
        if let Some(e) = e {
            self.expr(e);
        }
    }

    fn expr(&mut self, e: &ast::Expr<'_>) {
        use ast::Expr;
        match e {
            Expr::Var(_) | Expr::Const(_) => {}
            Expr::Slice(s) => {
                self.expr(&s.expr);
                self.opt(s.start.as_ref());
                self.opt(s.stop.as_ref());
                self.opt(s.step.as_ref());
            }
            Expr::UnaryOp(u) => {
                let span = u.span();
                let neg = matches!(u.op, ast::UnaryOpKind::Neg)
                    && !matches!(u.expr, Expr::Const(_))
                    && self.src.as_bytes().get(span.start_offset as usize) == Some(&b'-');
                if neg {
                    self.list
                        .push((span.start_offset as usize, 1, Op::Neg.call_open()));
                }
                self.expr(&u.expr);
                if neg {
                    self.list.push((span.end_offset as usize, 0, ")"));
                }
            }
            Expr::BinOp(b) => {
                let op = match b.op {
                    ast::BinOpKind::Add => Some(Op::Add),
                    ast::BinOpKind::Sub => Some(Op::Sub),
                    ast::BinOpKind::Mul => Some(Op::Mul),
                    _ => None,
                };
                let both_literals =
                    matches!(b.left, Expr::Const(_)) && matches!(b.right, Expr::Const(_));
                let at = match op {
                    Some(op) if !both_literals => self.operator_at(op, &b.left, &b.right),
                    _ => None,
                };
                let span = b.span();
                if let (Some(op), Some(at)) = (op, at) {
                    self.list
                        .push((span.start_offset as usize, 0, op.call_open()));
                    self.list.push((at, 1, ","));
                }
                self.expr(&b.left);
                self.expr(&b.right);
                if at.is_some() {
                    self.list.push((span.end_offset as usize, 0, ")"));
                }
            }
            Expr::Compare(c) => {
                self.expr(&c.expr);
                for o in &c.ops {
                    self.expr(&o.expr);
                }
            }
            Expr::IfExpr(i) => {
                self.expr(&i.test_expr);
                self.expr(&i.true_expr);
                self.opt(i.false_expr.as_ref());
            }
            Expr::Filter(f) => {
                self.opt(f.expr.as_ref());
                self.args(&f.args);
            }
            Expr::Test(t) => {
                self.expr(&t.expr);
                self.args(&t.args);
            }
            Expr::GetAttr(g) => self.expr(&g.expr),
            Expr::GetItem(g) => {
                self.expr(&g.expr);
                self.expr(&g.subscript_expr);
            }
            Expr::Call(c) => self.call(c),
            Expr::List(l) => self.exprs(&l.items),
            Expr::Tuple(t) => self.exprs(&t.items),
            Expr::Map(m) => {
                self.exprs(&m.keys);
                self.exprs(&m.values);
            }
        }
    }

    /// The byte offset of the operator between two operands: only parentheses
    /// and whitespace surround it there.
    fn operator_at(&self, op: Op, left: &ast::Expr<'_>, right: &ast::Expr<'_>) -> Option<usize> {
        let from = left.span().end_offset as usize;
        let to = text_start(right);
        let gap = self.src.get(from..to)?;
        let symbol = op.symbol().as_bytes()[0];
        let at = gap.bytes().position(|c| c == symbol)?;
        gap.bytes()
            .all(|c| c == symbol || c == b'(' || c == b')' || c.is_ascii_whitespace())
            .then_some(from + at)
    }
}

/// Where an expression's text starts: a filter's or test's span starts at its
/// name and a comparison's may start before it, so the first operand decides.
fn text_start(e: &ast::Expr<'_>) -> usize {
    use ast::Expr;
    let own = e.span().start_offset as usize;
    let first = match e {
        Expr::Filter(f) => f.expr.as_ref(),
        Expr::Test(t) => Some(&t.expr),
        Expr::Compare(c) => Some(&c.expr),
        Expr::IfExpr(i) => Some(&i.true_expr),
        Expr::BinOp(b) => Some(&b.left),
        Expr::GetAttr(g) => Some(&g.expr),
        Expr::GetItem(g) => Some(&g.expr),
        Expr::Slice(s) => Some(&s.expr),
        Expr::Call(c) => Some(&c.expr),
        _ => None,
    };
    first.map_or(own, |x| own.min(text_start(x)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_operators_into_calls() {
        let cases = [
            ("{{ a - b }}", "{{ __py_sub(a , b) }}"),
            (
                "{{ a - b - c }}",
                "{{ __py_sub(__py_sub(a , b) , c) }}",
            ),
            (
                "{{ a + b * c }}",
                "{{ __py_add(a , __py_mul(b , c)) }}",
            ),
            (
                "{% set s = (end - f(x)) %}",
                "{% set s = (__py_sub(end , f(x))) %}",
            ),
            ("{{ (a) - (b|int) }}", "{{ __py_sub((a) , (b|int)) }}"),
            ("{{ a - b | int }}", "{{ __py_sub(a , b | int) }}"),
            ("{{ -x.y - 1 }}", "{{ __py_sub(__py_neg(x.y) , 1) }}"),
            ("{{ 1 - 2 }}{{ -1 }}", "{{ 1 - 2 }}{{ -1 }}"),
            ("{{ 'a-b' ~ x }}", "{{ 'a-b' ~ x }}"),
            ("{%- if a -%}x-y{%- endif -%}", "{%- if a -%}x-y{%- endif -%}"),
            (
                "{{ a\n  - b }}\n{{ c }}",
                "{{ __py_sub(a\n  , b) }}\n{{ c }}",
            ),
            (
                "{% for i in range(n - 1) if i * 2 %}{% endfor %}",
                "{% for i in range(__py_sub(n , 1)) if __py_mul(i , 2) %}{% endfor %}",
            ),
            (
                "{% macro m(x=a+b) %}{{ x ** 2 }}{% endmacro %}",
                "{% macro m(x=__py_add(a,b)) %}{{ x ** 2 }}{% endmacro %}",
            ),
            ("{{ a -b }}", "{{ __py_sub(a ,b) }}"),
            (
                "{{ a - b is number }}{{ a * b|int|abs }}",
                "{{ __py_sub(a , b is number) }}{{ __py_mul(a , b|int|abs) }}",
            ),
            (
                "{{ a - (b < c) }}{{ -x|abs }}{{ x - (y if z else 1) }}",
                "{{ __py_sub(a , (b < c)) }}{{ __py_neg(x)|abs }}{{ __py_sub(x , (y if z else 1)) }}",
            ),
        ];
        for (src, want) in cases {
            assert_eq!(rewrite(src), want, "{src}");
        }
        assert_eq!(rewrite_expression("d - t(1)"), "__py_sub(d , t(1))");
    }

    fn render(src: &str) -> Result<String, Error> {
        let mut env = Environment::new();
        register(&mut env);
        env.add_template_owned("t", rewrite(src).into_owned())?;
        env.get_template("t")?.render(())
    }

    #[test]
    fn plain_values_keep_minijinja_results_and_errors() {
        assert_eq!(
            render("{% set n = 3 %}{% set f = 1.5 %}{% set s = 'x' %}{{ n - 1 }} {{ n * f }} {{ f + n }} {{ s + 'y' }} {{ [n] + [1] }} {{ s * 2 }} {{ -n }} {{ n - true }} {{ 9223372036854775807 + n }}").unwrap(),
            "2 4.5 4.5 xy [3, 1] xx -3 2 9223372036854775810"
        );
        let err = render("{% set s = 'x' %}\n{{ s - 1 }}").unwrap_err();
        assert_eq!(err.line(), Some(2));
        assert_eq!(
            err.detail(),
            Some("tried to use - operator on unsupported types string and number")
        );
    }
}
