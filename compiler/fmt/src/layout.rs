//! The layout plan: which tokens start a line, at what indent, and the
//! other facts about tokens that only the tree knows.
//!
//! The formatter prints the file's own tokens, so the tree it reads back is
//! the tree it was given; this module decides only where the line breaks
//! go. It walks the AST once and, for each construct, marks the token that
//! starts each of its lines (items, fields, members, statements, query
//! stages, closing braces), the opening parentheses and brackets of calls
//! and indexes (printed without a space before them), and unary operators
//! (printed without a space after them). Brace lists that may fit on one
//! line (state variables, the fields of an emitted log, imported names)
//! become [`Group`]s, decided when printing, where the column is known.

use dtc_syntax::ast::*;
use dtc_syntax::lexer::Token;

use crate::trivia::Tok;

/// Whether a blank line may or must come before a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blank {
    /// Always a blank line (between items that span several lines).
    Force,
    /// A blank line where the source had one.
    Keep,
    /// Never directly before this token (comments before it keep theirs).
    Never,
}

/// A token that starts a line.
#[derive(Debug, Clone, Copy)]
pub struct LineStart {
    pub indent: usize,
    pub blank: Blank,
    /// The indent of comments on their own lines before the token: deeper
    /// than the token for a closing brace, whose comments belong inside.
    pub comment_indent: usize,
    /// For a closing brace: its opening brace, so an empty pair prints as
    /// `{}`.
    pub open: Option<usize>,
}

/// A brace list printed on one line when it fits and holds no comment, one
/// element per line otherwise.
#[derive(Debug, Clone)]
pub struct Group {
    pub open: usize,
    pub close: usize,
    /// The indent of the line the list starts on.
    pub indent: usize,
    /// The first and last token of each element.
    pub elems: Vec<(usize, usize)>,
}

/// Everything the printer needs besides the tokens and trivia.
#[derive(Debug)]
pub struct Plan {
    pub line_starts: Vec<Option<LineStart>>,
    /// `(` and `[` that follow their callee or base with no space.
    pub tight: Vec<bool>,
    /// Unary `-` and `!`.
    pub unary: Vec<bool>,
    /// Tokens after which a trailing comma is added (one-per-line lists).
    pub comma_after: Vec<bool>,
    pub groups: Vec<Group>,
    /// For each token that opens a group, the group's index.
    pub group_at: Vec<Option<usize>>,
}

/// Builds the plan for a parsed, error-free file.
pub fn plan(tokens: &[Tok<'_>], ast: &SourceFileAst) -> Plan {
    let n = tokens.len();
    let mut matching = vec![usize::MAX; n];
    let mut stack = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        match t.token {
            Token::LBrace | Token::LParen | Token::LBracket => stack.push(i),
            Token::RBrace | Token::RParen | Token::RBracket => {
                if let Some(open) = stack.pop() {
                    matching[open] = i;
                    matching[i] = open;
                }
            }
            _ => {}
        }
    }
    let mut w = Walker {
        tokens,
        matching,
        plan: Plan {
            line_starts: vec![None; n],
            tight: vec![false; n],
            unary: vec![false; n],
            comma_after: vec![false; n],
            groups: Vec::new(),
            group_at: vec![None; n],
        },
    };
    w.file(ast);
    w.plan
}

struct Walker<'a, 's> {
    tokens: &'a [Tok<'s>],
    matching: Vec<usize>,
    plan: Plan,
}

impl Walker<'_, '_> {
    /// The first token at or after a byte offset.
    fn at(&self, offset: usize) -> usize {
        self.tokens
            .partition_point(|t| t.start < offset)
            .min(self.tokens.len().saturating_sub(1))
    }

    /// The last token that ends at or before a byte offset.
    fn ending(&self, offset: usize) -> usize {
        self.tokens
            .partition_point(|t| t.end <= offset)
            .saturating_sub(1)
    }

    fn is(&self, i: usize, token: &Token) -> bool {
        self.tokens.get(i).is_some_and(|t| &t.token == token)
    }

    /// The first `{` at or after token `from`, within `span`.
    fn brace_in(&self, from: usize, span: Span) -> Option<usize> {
        (from..self.tokens.len())
            .take_while(|&i| self.tokens[i].start < span.end)
            .find(|&i| self.tokens[i].token == Token::LBrace)
    }

    fn line(&mut self, i: usize, indent: usize, blank: Blank) {
        if let Some(slot) = self.plan.line_starts.get_mut(i) {
            *slot = Some(LineStart {
                indent,
                blank,
                comment_indent: indent,
                open: None,
            });
        }
    }

    /// Marks a closing brace of a one-per-line list or block.
    fn close(&mut self, open: usize, indent: usize) {
        let close = self.matching[open];
        if let Some(slot) = self.plan.line_starts.get_mut(close) {
            *slot = Some(LineStart {
                indent,
                blank: Blank::Never,
                comment_indent: indent + 1,
                open: Some(open),
            });
        }
    }

    fn tight(&mut self, i: usize) {
        if self.is(i, &Token::LParen) || self.is(i, &Token::LBracket) {
            self.plan.tight[i] = true;
        }
    }

    /// A brace list with one element per line and a trailing comma.
    fn vertical_list(&mut self, open: usize, spans: &[Span], indent: usize) {
        for span in spans {
            let first = self.at(span.start);
            self.line(first, indent + 1, Blank::Keep);
        }
        if let Some(last) = spans.last() {
            let last = self.ending(last.end);
            if !self.is(last + 1, &Token::Comma) {
                self.plan.comma_after[last] = true;
            }
        }
        self.close(open, indent);
    }

    /// A brace list decided when printing.
    fn group(&mut self, open: usize, spans: &[Span], indent: usize) {
        let close = self.matching[open];
        if close == usize::MAX {
            return;
        }
        let elems = spans
            .iter()
            .map(|s| (self.at(s.start), self.ending(s.end)))
            .collect();
        self.plan.group_at[open] = Some(self.plan.groups.len());
        self.plan.groups.push(Group {
            open,
            close,
            indent,
            elems,
        });
    }

    fn file(&mut self, ast: &SourceFileAst) {
        let mut prev_multiline = false;
        for item in &ast.items {
            let multiline = is_multiline(item);
            let blank = if multiline || prev_multiline {
                Blank::Force
            } else {
                Blank::Keep
            };
            let first = self.at(item.span().start);
            self.line(first, 0, blank);
            self.item(item, 0);
            prev_multiline = multiline;
        }
    }

    fn item(&mut self, item: &Item, indent: usize) {
        match item {
            Item::Import(import) => {
                if let Some(names) = &import.names
                    && let Some(open) = self.brace_in(self.at(import.span.start), import.span)
                {
                    let spans: Vec<Span> = names.iter().map(|n| n.span).collect();
                    self.group(open, &spans, indent);
                }
            }
            Item::Event(e) => {
                for f in &e.fields {
                    self.ty(&f.ty);
                    for a in &f.annotations {
                        self.tight(self.ending(a.name.span.end) + 1);
                        self.exprs(&a.args);
                    }
                }
                if let Some(open) = self.brace_in(self.at(e.span.start), e.span) {
                    let spans: Vec<Span> = e.fields.iter().map(|f| f.span).collect();
                    self.vertical_list(open, &spans, indent);
                }
            }
            Item::Probe(p) => {
                self.tight(self.ending(p.kind.span.end) + 1);
                self.args(&p.args);
            }
            Item::Query(q) => {
                if !q.stages.is_empty() {
                    let source = self.at(q.source.span.start);
                    self.line(source, indent + 1, Blank::Never);
                }
                for stage in &q.stages {
                    let pipe = self.at(stage.span.start).saturating_sub(1);
                    if self.is(pipe, &Token::Pipe) {
                        self.line(pipe, indent + 1, Blank::Never);
                    }
                    self.stage(stage);
                }
            }
            Item::Machine(m) => {
                if let Some(key) = &m.key {
                    self.expr(key);
                }
                if let Some(max) = &m.max {
                    self.expr(max);
                }
                for member in &m.members {
                    let span = match member {
                        MachineMember::State(s) => s.span,
                        MachineMember::Var(v) => v.span,
                        MachineMember::On(t) => t.span,
                        MachineMember::After(t) => t.span,
                        MachineMember::Error(span) => *span,
                    };
                    self.line(self.at(span.start), indent + 1, Blank::Keep);
                    self.machine_member(member, indent + 1);
                }
                if let Some(open) = self.brace_in(self.at(m.span.start), m.span) {
                    self.close(open, indent);
                }
            }
            Item::Processor(p) => {
                for member in &p.members {
                    let span = match member {
                        ProcessorMember::Var(v) => v.span,
                        ProcessorMember::Fn(f) => f.span,
                        ProcessorMember::Handler(h) => h.span,
                        ProcessorMember::Error(span) => *span,
                    };
                    self.line(self.at(span.start), indent + 1, Blank::Keep);
                    match member {
                        ProcessorMember::Var(v) => self.var(v),
                        ProcessorMember::Fn(f) => self.function(f, indent + 1),
                        ProcessorMember::Handler(h) => {
                            if let Some(g) = &h.guard {
                                self.expr(g);
                            }
                            self.block(&h.body, indent + 1);
                        }
                        ProcessorMember::Error(_) => {}
                    }
                }
                if let Some(open) = self.brace_in(self.at(p.span.start), p.span) {
                    self.close(open, indent);
                }
            }
            Item::Fn(f) => self.function(f, indent),
            Item::Shaping(s) => match &s.kind {
                ShapingKind::Suppress { when, .. } => {
                    if let Some(w) = when {
                        self.expr(w);
                    }
                }
                ShapingKind::Redact { .. } => {}
                ShapingKind::Sample { rate, .. } => self.expr(rate),
                ShapingKind::Limit { count, per, .. } => {
                    self.expr(count);
                    self.expr(per);
                }
            },
            Item::Error(_) => {}
        }
    }

    fn machine_member(&mut self, member: &MachineMember, indent: usize) {
        match member {
            MachineMember::State(s) => {
                for v in &s.vars {
                    self.ty(&v.ty);
                    if let Some(d) = &v.default {
                        self.expr(d);
                    }
                }
                if let Some(open) = self.brace_in(self.at(s.span.start), s.span) {
                    let spans: Vec<Span> = s.vars.iter().map(|v| v.span).collect();
                    self.group(open, &spans, indent);
                }
            }
            MachineMember::Var(v) => self.var(v),
            MachineMember::On(t) => {
                if let Some(g) = &t.guard {
                    self.expr(g);
                }
                if let Some(b) = &t.body {
                    self.block(b, indent);
                }
            }
            MachineMember::After(t) => {
                self.expr(&t.after);
                if let Some(b) = &t.body {
                    self.block(b, indent);
                }
            }
            MachineMember::Error(_) => {}
        }
    }

    fn var(&mut self, v: &VarDecl) {
        if let Some(t) = &v.ty {
            self.ty(t);
        }
        if let Some(e) = &v.init {
            self.expr(e);
        }
        if let Some(e) = &v.max {
            self.expr(e);
        }
    }

    fn function(&mut self, f: &FnDecl, indent: usize) {
        self.tight(self.ending(f.name.span.end) + 1);
        for p in &f.params {
            self.ty(&p.ty);
        }
        if let Some(r) = &f.ret {
            self.ty(r);
        }
        self.block(&f.body, indent);
    }

    fn stage(&mut self, stage: &Stage) {
        match &stage.kind {
            StageKind::Where(e) | StageKind::Sample(e) => self.expr(e),
            StageKind::Extend(cols) | StageKind::Project(cols) => self.columns(cols),
            StageKind::Summarize {
                aggregates,
                by,
                max_series,
                every,
            } => {
                self.columns(aggregates);
                self.columns(by);
                for e in [max_series, every].into_iter().flatten() {
                    self.expr(e);
                }
            }
            StageKind::Limit { count, per } => {
                self.expr(count);
                self.expr(per);
            }
            StageKind::EmitLog(_) | StageKind::EmitMetric(_) | StageKind::Error => {}
        }
    }

    fn columns(&mut self, cols: &[Column]) {
        for c in cols {
            self.expr(&c.expr);
        }
    }

    fn block(&mut self, block: &Block, indent: usize) {
        let open = self.at(block.span.start);
        if !self.is(open, &Token::LBrace) {
            return;
        }
        for stmt in &block.stmts {
            self.line(self.at(stmt.span.start), indent + 1, Blank::Keep);
            self.stmt(stmt, indent + 1);
        }
        self.close(open, indent);
    }

    /// The block after `else`: a braced block, or an `if` that continues
    /// the line.
    fn else_branch(&mut self, block: &Block, indent: usize) {
        if self.is(self.at(block.span.start), &Token::LBrace) {
            self.block(block, indent);
        } else {
            for stmt in &block.stmts {
                self.stmt(stmt, indent);
            }
        }
    }

    fn stmt(&mut self, stmt: &Stmt, indent: usize) {
        match &stmt.kind {
            StmtKind::Let { ty, value, .. } => {
                if let Some(t) = ty {
                    self.ty(t);
                }
                self.expr(value);
            }
            StmtKind::Assign { target, value, .. } => {
                self.expr(target);
                self.expr(value);
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                self.expr(cond);
                self.block(then, indent);
                if let Some(o) = otherwise {
                    self.else_branch(o, indent);
                }
            }
            StmtKind::IfLet {
                value,
                then,
                otherwise,
                ..
            } => {
                self.expr(value);
                self.block(then, indent);
                if let Some(o) = otherwise {
                    self.else_branch(o, indent);
                }
            }
            StmtKind::For { iter, body, .. } => {
                match iter {
                    ForIter::Range(a, b) => {
                        self.expr(a);
                        self.expr(b);
                    }
                    ForIter::Expr(e) => self.expr(e),
                }
                self.block(body, indent);
            }
            StmtKind::EmitLog { fields, budget, .. } => {
                for f in fields {
                    self.expr(&f.value);
                }
                if let Some(open) = self.brace_in(self.at(stmt.span.start), stmt.span) {
                    let spans: Vec<Span> = fields.iter().map(|f| f.span).collect();
                    self.group(open, &spans, indent);
                }
                self.budget(budget.as_ref());
            }
            StmtKind::Trigger {
                action,
                args,
                budget,
            } => {
                self.tight(self.ending(action.span.end) + 1);
                self.args(args);
                self.budget(budget.as_ref());
            }
            StmtKind::Return(e) => {
                if let Some(e) = e {
                    self.expr(e);
                }
            }
            StmtKind::Expr(e) => self.expr(e),
            StmtKind::Error => {}
        }
    }

    fn budget(&mut self, budget: Option<&Budget>) {
        if let Some(b) = budget {
            self.expr(&b.count);
            self.expr(&b.per);
        }
    }

    fn ty(&mut self, ty: &TypeExpr) {
        match &ty.kind {
            TypeExprKind::Named { name, args } => {
                if !args.is_empty() {
                    self.tight(self.ending(name.span.end) + 1);
                }
                for a in args {
                    self.ty(a);
                }
            }
            TypeExprKind::Optional(inner) => self.ty(inner),
            TypeExprKind::Error => {}
        }
    }

    fn args(&mut self, args: &[Arg]) {
        for a in args {
            self.expr(&a.value);
        }
    }

    fn exprs(&mut self, exprs: &[Expr]) {
        for e in exprs {
            self.expr(e);
        }
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Field(base, _) => self.expr(base),
            ExprKind::Index(base, index) => {
                self.tight(self.ending(base.span.end) + 1);
                self.expr(base);
                self.expr(index);
            }
            ExprKind::Call { callee, args } => {
                self.tight(self.ending(callee.span.end) + 1);
                self.args(args);
            }
            ExprKind::Unary(_, inner) => {
                let op = self.at(inner.span.start).saturating_sub(1);
                if self.is(op, &Token::Minus) || self.is(op, &Token::Bang) {
                    self.plan.unary[op] = true;
                }
                self.expr(inner);
            }
            ExprKind::Binary(_, a, b) => {
                self.expr(a);
                self.expr(b);
            }
            _ => {}
        }
    }
}

/// Items that take several lines get a blank line on each side.
fn is_multiline(item: &Item) -> bool {
    match item {
        Item::Event(e) => !e.fields.is_empty(),
        Item::Query(q) => !q.stages.is_empty(),
        Item::Machine(m) => !m.members.is_empty(),
        Item::Processor(p) => !p.members.is_empty(),
        Item::Fn(f) => !f.body.stmts.is_empty(),
        _ => false,
    }
}
