//! The owner of the compiled code: [`compile`] walks every construct of a
//! program that holds code, builds one native function per construct with
//! [`crate::compile::Tx`], and keeps the `JITModule`, the function
//! pointers by [`Site`], and the tables the helpers read.
//!
//! A construct the translator refuses (`Unsupported`: today, only a
//! top-level value that is not slot-sized, such as a map-valued column)
//! runs on the interpreter and is listed in the [`Report`]; anything else
//! that goes wrong (cranelift refusing the function) is a [`CompileError`]
//! for the whole program: the JIT never silently becomes the interpreter.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{AbiParam, InstBuilder, Signature};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::{Context, ir};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Module, default_libcall_names};
use dtc_engine::exec::Site;
use dtc_engine::slots::{SLOT_BYTES, STD_SLOTS};
use dtc_ir::*;

use crate::abi::{CTX_EVENT, CTX_OUT, CTX_ROW, CTX_STATE, FAULT, NativeCtx, OK, type_code};
use crate::compile::{Counts, Tables, Tx, Unsupported, expr_nodes, stmt_nodes};

/// Why a program could not be compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileError(pub String);

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the JIT cannot compile this program: {}", self.0)
    }
}

impl std::error::Error for CompileError {}

/// What the JIT made of a program.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// IR nodes by how they run.
    pub nodes: Counts,
    /// Native functions built.
    pub functions: usize,
    /// Queries whose leading `where` stages run as one loop per batch.
    pub batch_filters: usize,
    /// Constructs left to the interpreter, with the reason.
    pub interpreted: Vec<(String, String)>,
    /// Wall time of translation and code generation.
    pub compile_time: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.nodes;
        let pct = |x: u64| {
            if n.total() == 0 {
                0.0
            } else {
                x as f64 * 100.0 / n.total() as f64
            }
        };
        writeln!(
            f,
            "jit: {} functions, {} batch filters, compiled in {:.2} ms",
            self.functions,
            self.batch_filters,
            self.compile_time.as_secs_f64() * 1e3
        )?;
        writeln!(
            f,
            "jit: IR nodes: {} native ({:.0}%), {} through runtime helpers ({:.0}%), {} interpreted ({:.0}%)",
            n.native,
            pct(n.native),
            n.helper,
            pct(n.helper),
            n.interpreted,
            pct(n.interpreted)
        )?;
        for (site, why) in &self.interpreted {
            writeln!(f, "jit: interpreted: {site}: {why}")?;
        }
        Ok(())
    }
}

pub(crate) type Code = unsafe extern "C" fn(*mut NativeCtx) -> i64;
pub(crate) type BatchCode = unsafe extern "C" fn(*const u8, u64, *mut u8) -> i64;

pub(crate) struct ExprCode {
    pub code: Code,
    pub event: Option<u32>,
    pub row_width: Option<u32>,
    pub ty: i64,
}

pub(crate) struct BodyCode {
    pub code: Code,
    pub event: Option<u32>,
}

pub(crate) struct BatchFilter {
    pub code: BatchCode,
    /// The slots of the source layout's full row that its rows hold, in
    /// order: the layout's projection ([`Compiled::projections`]).
    pub slots: Vec<u32>,
}

/// A batch filter translated by `Builder::build_filter`: its function (when
/// defined) and the full-row slots it reads.
struct Filter {
    id: Option<FuncId>,
    reads: Vec<u32>,
}

/// Compiled code by site: looked up on every call into it, several times
/// per event, so hashed with foldhash (std's SipHash showed in profiles);
/// the keys are the program's own sites, not input.
pub(crate) type SiteMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A compiled program.
pub(crate) struct Compiled {
    module: Option<JITModule>,
    pub exprs: SiteMap<Site, ExprCode>,
    /// Bodies by site, but for machine transitions' (`transitions`).
    pub bodies: SiteMap<Site, BodyCode>,
    /// The bodies of machine transitions, by machine then transition, and
    /// transition selection, by machine then event layout: asked for on
    /// every machine event, so indexed, not hashed.
    pub transitions: Vec<Vec<Option<BodyCode>>>,
    pub selects: Vec<Vec<Option<Code>>>,
    pub filters: SiteMap<u32, BatchFilter>,
    /// Per layout, the slots its batch filters read (empty: it has none):
    /// the rows a batch lays end to end for them.
    pub projections: Vec<Vec<u32>>,
    /// Per layout, the slots of its records' rows: compiled code reads a
    /// row at fixed offsets, so it is given only a row of this length.
    pub widths: Vec<usize>,
    pub tables: Tables,
    pub report: Report,
}

impl Drop for Compiled {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the function pointers into this module live in `self`
            // only, and are dropped with it; no compiled code is running
            // (`Compiled` is borrowed by every call into it).
            unsafe { m.free_memory() };
        }
    }
}

enum Kind<'p> {
    Expr(&'p Expr),
    Body(&'p [Stmt]),
    Select(&'p Machine, u32),
}

struct Pending<'p> {
    site: Option<Site>,
    what: String,
    kind: Kind<'p>,
    event: Option<u32>,
    row_width: Option<u32>,
    id: FuncId,
}

struct Builder<'p> {
    program: &'p Program,
    module: JITModule,
    ctx: Context,
    fctx: FunctionBuilderContext,
    tables: Tables,
    report: Report,
}

fn err(e: impl fmt::Display) -> CompileError {
    CompileError(e.to_string())
}

/// Compiles a verified program.
pub(crate) fn compile(program: &Program) -> Result<Compiled, CompileError> {
    let started = Instant::now();
    let mut flags = settings::builder();
    flags.set("opt_level", "speed").map_err(err)?;
    flags.set("use_colocated_libcalls", "false").map_err(err)?;
    flags.set("is_pic", "false").map_err(err)?;
    let isa = cranelift_native::builder()
        .map_err(|e| CompileError(format!("this machine is not supported: {e}")))?
        .finish(settings::Flags::new(flags))
        .map_err(err)?;
    if isa.pointer_type() != I64 {
        return Err(CompileError("the JIT needs a 64-bit target".into()));
    }
    let module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
    let mut b = Builder {
        program,
        ctx: module.make_context(),
        module,
        fctx: FunctionBuilderContext::new(),
        tables: Tables::default(),
        report: Report::default(),
    };
    let mut pending: Vec<Pending<'_>> = Vec::new();
    let mut filters: Vec<(u32, FuncId, Vec<u32>)> = Vec::new();
    for site in sites(program) {
        let (what, kind, event, row_width) = site;
        match b.build(&what, &kind, event, row_width)? {
            Ok(id) => pending.push(Pending {
                site: match &kind {
                    Kind::Select(..) => None,
                    _ => Some(site_of(&what, program)?),
                },
                what,
                kind,
                event,
                row_width,
                id,
            }),
            Err(Unsupported(why)) => {
                b.report.nodes.interpreted += match kind {
                    Kind::Expr(e) => expr_nodes(e),
                    Kind::Body(s) => stmt_nodes(s),
                    Kind::Select(..) => 0,
                };
                b.report.interpreted.push((what, why));
            }
        }
    }
    // Batch filters: first what each reads, then each compiled over the
    // rows of its layout's projection (the slots any filter of the layout
    // reads), which the runtime lays end to end for them.
    let mut reading: Vec<(u32, Vec<&Expr>, Vec<u32>)> = Vec::new();
    let mut projections: Vec<Vec<u32>> = vec![Vec::new(); program.events.len()];
    for (qi, q) in program.queries.iter().enumerate() {
        let wheres: Vec<&Expr> = q
            .stages
            .iter()
            .map_while(|s| match s {
                Stage::Where(e) => Some(e),
                _ => None,
            })
            .collect();
        let Some(layout) = program.events.get(q.source as usize) else {
            continue;
        };
        if wheres.is_empty() {
            continue;
        }
        if let Some(f) = b.build_filter(&wheres, layout, None)? {
            projections[q.source as usize].extend(&f.reads);
            reading.push((qi as u32, wheres, f.reads));
        }
    }
    for p in &mut projections {
        p.sort_unstable();
        p.dedup();
        // A row of no slots has no address to step by: keep the time.
        if p.is_empty() {
            p.push(0);
        }
    }
    for (qi, wheres, _) in reading {
        let source = program.queries[qi as usize].source as usize;
        let (Some(layout), Some(projection)) =
            (program.events.get(source), projections.get(source))
        else {
            continue;
        };
        if let Some(Filter { id: Some(id), .. }) =
            b.build_filter(&wheres, layout, Some(projection))?
        {
            filters.push((qi, id, projection.clone()));
        }
    }
    b.module.finalize_definitions().map_err(err)?;
    let mut out = Compiled {
        exprs: SiteMap::default(),
        bodies: SiteMap::default(),
        transitions: program
            .machines
            .iter()
            .map(|m| m.transitions.iter().map(|_| None).collect())
            .collect(),
        selects: program
            .machines
            .iter()
            .map(|_| vec![None; program.events.len()])
            .collect(),
        filters: SiteMap::default(),
        projections: vec![Vec::new(); program.events.len()],
        widths: program
            .events
            .iter()
            .map(|e| dtc_engine::slots::STD_SLOTS.len() + e.fields.len())
            .collect(),
        tables: std::mem::take(&mut b.tables),
        report: std::mem::take(&mut b.report),
        module: None,
    };
    for p in pending {
        let ptr = b.module.get_finalized_function(p.id);
        // SAFETY: `ptr` is a function this module just finalized with the
        // signature `extern "C" fn(*mut NativeCtx) -> i64` (see `build`).
        let code: Code = unsafe { std::mem::transmute::<*const u8, Code>(ptr) };
        match (p.kind, p.site) {
            (Kind::Expr(e), Some(site)) => {
                out.exprs.insert(
                    site,
                    ExprCode {
                        code,
                        event: p.event,
                        // A row is built for the call only if the code reads it.
                        row_width: p.row_width.filter(|_| reads_columns(e)),
                        ty: type_code(&e.ty),
                    },
                );
            }
            (Kind::Body(_), Some(site)) => {
                let body = BodyCode {
                    code,
                    event: p.event,
                };
                let at = match site {
                    Site::TransitionBody {
                        machine,
                        transition,
                    } => out
                        .transitions
                        .get_mut(machine as usize)
                        .and_then(|m| m.get_mut(transition as usize)),
                    _ => None,
                };
                match at {
                    Some(at) => *at = Some(body),
                    None => {
                        out.bodies.insert(site, body);
                    }
                }
            }
            (Kind::Select(_, layout), _) => {
                let mi = p
                    .what
                    .rsplit('#')
                    .next()
                    .and_then(|x| x.parse::<u32>().ok())
                    .ok_or_else(|| CompileError(format!("bad selector name {}", p.what)))?;
                let at = out
                    .selects
                    .get_mut(mi as usize)
                    .and_then(|m| m.get_mut(layout as usize))
                    .ok_or_else(|| CompileError(format!("no machine or layout for {}", p.what)))?;
                *at = Some(code);
            }
            _ => return Err(CompileError(format!("no site for {}", p.what))),
        }
        out.report.functions += 1;
    }
    for (qi, id, slots) in filters {
        let ptr = b.module.get_finalized_function(id);
        // SAFETY: built by `build_filter` with the signature
        // `extern "C" fn(*const u8, u64, *mut u8) -> i64`.
        let code: BatchCode = unsafe { std::mem::transmute::<*const u8, BatchCode>(ptr) };
        let source = program.queries[qi as usize].source as usize;
        if let Some(p) = out.projections.get_mut(source) {
            p.clone_from(&slots);
        }
        out.filters.insert(qi, BatchFilter { code, slots });
        out.report.functions += 1;
        out.report.batch_filters += 1;
    }
    out.module = Some(b.module);
    out.report.compile_time = started.elapsed();
    Ok(out)
}

/// Sites are named in the report; the name also carries the indices back
/// to the [`Site`] (`site_of`), so there is one list of constructs.
fn sites(p: &Program) -> Vec<(String, Kind<'_>, Option<u32>, Option<u32>)> {
    let mut out = Vec::new();
    for (ri, r) in p.shaping.iter().enumerate() {
        let (event, when) = match r {
            ShapeRule::Suppress { event, when } | ShapeRule::SuppressField { event, when, .. } => {
                (*event, when)
            }
            ShapeRule::RedactStd { event, when, .. } => (*event, when),
            _ => continue,
        };
        if let Some(w) = when {
            out.push((format!("shape#{ri}"), Kind::Expr(w), Some(event), None));
        }
    }
    for (qi, q) in p.queries.iter().enumerate() {
        let width = row_width(q);
        let mut event = Some(q.source);
        let mut summarized = false;
        for (si, s) in q.stages.iter().enumerate() {
            let name = |j: usize| format!("query#{qi}#{si}#{j}");
            let ev = if summarized { None } else { event };
            match s {
                Stage::Where(e) => out.push((name(0), Kind::Expr(e), ev, Some(width))),
                Stage::Extend(cols) | Stage::Project(cols) => {
                    for (j, (_, e)) in cols.iter().enumerate() {
                        out.push((name(j), Kind::Expr(e), ev, Some(width)));
                    }
                    if matches!(s, Stage::Project(_)) {
                        event = None;
                    }
                }
                Stage::Summarize {
                    keys, aggregates, ..
                } => {
                    let mut j = 0;
                    for (_, e) in keys {
                        out.push((name(j), Kind::Expr(e), ev, Some(width)));
                        j += 1;
                    }
                    for a in aggregates {
                        for e in &a.args {
                            out.push((name(j), Kind::Expr(e), ev, Some(width)));
                            j += 1;
                        }
                    }
                    summarized = true;
                }
                Stage::EmitLog { fields, .. } => {
                    for (j, (_, e)) in fields.iter().enumerate() {
                        out.push((name(j), Kind::Expr(e), ev, Some(width)));
                    }
                }
                _ => {}
            }
        }
    }
    for (mi, m) in p.machines.iter().enumerate() {
        if let Some(keys) = &m.keys {
            for (j, (ev, e)) in keys.iter().enumerate() {
                out.push((format!("key#{mi}#{j}"), Kind::Expr(e), Some(*ev), None));
            }
        }
        for (vi, v) in m.vars.iter().enumerate() {
            if let Some(e) = &v.init {
                out.push((format!("mvar#{mi}#{vi}"), Kind::Expr(e), None, None));
            }
        }
        for (si, s) in m.states.iter().enumerate() {
            for (j, (_, d)) in s.vars.iter().enumerate() {
                if let Some(e) = d {
                    out.push((format!("default#{mi}#{si}#{j}"), Kind::Expr(e), None, None));
                }
            }
        }
        let mut layouts: Vec<u32> = Vec::new();
        for (ti, t) in m.transitions.iter().enumerate() {
            if !layouts.contains(&t.event) {
                layouts.push(t.event);
            }
            if let Some(g) = &t.guard {
                out.push((
                    format!("guard#{mi}#{ti}"),
                    Kind::Expr(g),
                    Some(t.event),
                    None,
                ));
            }
            out.push((
                format!("transition#{mi}#{ti}"),
                Kind::Body(&t.body),
                Some(t.event),
                None,
            ));
        }
        for l in layouts {
            out.push((
                format!("select#{l}#{mi}"),
                Kind::Select(m, l),
                Some(l),
                None,
            ));
        }
        for (xi, t) in m.timeouts.iter().enumerate() {
            out.push((
                format!("timeout#{mi}#{xi}"),
                Kind::Body(&t.body),
                None,
                None,
            ));
        }
    }
    for (pi, pr) in p.processors.iter().enumerate() {
        for (vi, v) in pr.vars.iter().enumerate() {
            if let Some(e) = &v.init {
                out.push((format!("pvar#{pi}#{vi}"), Kind::Expr(e), None, None));
            }
        }
        for (hi, h) in pr.handlers.iter().enumerate() {
            if let Some(g) = &h.guard {
                out.push((
                    format!("hguard#{pi}#{hi}"),
                    Kind::Expr(g),
                    Some(h.event),
                    None,
                ));
            }
            out.push((
                format!("handler#{pi}#{hi}"),
                Kind::Body(&h.body),
                Some(h.event),
                None,
            ));
        }
    }
    out
}

fn site_of(name: &str, p: &Program) -> Result<Site, CompileError> {
    let mut parts = name.split('#');
    let kind = parts.next().unwrap_or("");
    let n: Vec<u32> = parts.filter_map(|x| x.parse().ok()).collect();
    let g = |i: usize| {
        n.get(i)
            .copied()
            .ok_or_else(|| CompileError(format!("bad site name {name}")))
    };
    let _ = p;
    Ok(match kind {
        "shape" => Site::ShapeWhen { rule: g(0)? },
        "query" => Site::Stage {
            query: g(0)?,
            stage: g(1)?,
            index: g(2)?,
        },
        "key" => Site::MachineKey {
            machine: g(0)?,
            index: g(1)?,
        },
        "mvar" => Site::MachineVar {
            machine: g(0)?,
            var: g(1)?,
        },
        "default" => Site::StateDefault {
            machine: g(0)?,
            state: g(1)?,
            index: g(2)?,
        },
        "guard" => Site::TransitionGuard {
            machine: g(0)?,
            transition: g(1)?,
        },
        "transition" => Site::TransitionBody {
            machine: g(0)?,
            transition: g(1)?,
        },
        "timeout" => Site::TimeoutBody {
            machine: g(0)?,
            timeout: g(1)?,
        },
        "pvar" => Site::ProcessorVar {
            processor: g(0)?,
            var: g(1)?,
        },
        "hguard" => Site::HandlerGuard {
            processor: g(0)?,
            handler: g(1)?,
        },
        "handler" => Site::HandlerBody {
            processor: g(0)?,
            handler: g(1)?,
        },
        _ => return Err(CompileError(format!("bad site name {name}"))),
    })
}

/// How many columns a query's rows can have: enough for every column any
/// of its stages reads.
fn row_width(q: &Query) -> u32 {
    let mut w = 0u32;
    for n in 0..=q.stages.len() {
        w = w.max(row_after(q, n).len() as u32);
    }
    w
}

impl<'p> Builder<'p> {
    fn signature(&self, params: usize) -> Signature {
        let mut sig = Signature::new(self.module.isa().default_call_conv());
        sig.params.extend((0..params).map(|_| AbiParam::new(I64)));
        sig.returns.push(AbiParam::new(I64));
        sig
    }

    /// Builds one function; `Ok(Err(_))` when the translator refuses the
    /// construct (it then runs on the interpreter).
    fn build(
        &mut self,
        what: &str,
        kind: &Kind<'_>,
        event: Option<u32>,
        row_width: Option<u32>,
    ) -> Result<Result<FuncId, Unsupported>, CompileError> {
        self.module.clear_context(&mut self.ctx);
        self.ctx.func.signature = self.signature(1);
        let program = self.program;
        let layout = event.and_then(|e| program.events.get(e as usize));
        let call_conv = self.module.isa().default_call_conv();
        let mut fb = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
        let entry = fb.create_block();
        fb.append_block_params_for_function_params(entry);
        fb.switch_to_block(entry);
        let ctx = fb.block_params(entry)[0];
        let fail = fb.create_block();
        let mut tx = Tx::new(fb, &mut self.tables, call_conv, ctx, fail, false);
        if let Some(l) = layout {
            let base = tx.b.ins().load(I64, mem(), ctx, CTX_EVENT);
            tx.event = Some((base, l));
        }
        if let Some(w) = row_width.filter(|w| *w > 0) {
            let base = tx.b.ins().load(I64, mem(), ctx, CTX_ROW);
            tx.row = Some((base, w));
        }
        let built: Result<(), Unsupported> = (|| {
            match kind {
                Kind::Expr(e) => {
                    let v = tx.expr(e)?;
                    tx.b.ins().store(mem(), v.bits, ctx, CTX_OUT);
                    tx.b.ins().istore32(mem(), v.len, ctx, CTX_OUT + 8);
                    tx.b.ins().istore32(mem(), v.tag, ctx, CTX_OUT + 12);
                    let ok = tx.b.ins().iconst(I64, OK);
                    tx.b.ins().return_(&[ok]);
                }
                Kind::Body(body) => {
                    let ret = tx.b.create_block();
                    tx.ret = Some(ret);
                    tx.block(body)?;
                    tx.b.ins().jump(ret, &[]);
                    tx.b.switch_to_block(ret);
                    let ok = tx.b.ins().iconst(I64, OK);
                    tx.b.ins().return_(&[ok]);
                }
                Kind::Select(m, layout) => {
                    let state = tx.b.ins().load(I64, mem(), ctx, CTX_STATE);
                    for (ti, t) in m.transitions.iter().enumerate() {
                        if t.event != *layout {
                            continue;
                        }
                        let next = tx.b.create_block();
                        let check = tx.b.create_block();
                        let found = tx.b.create_block();
                        // From-set test.
                        if t.from.is_empty() {
                            tx.b.ins().jump(check, &[]);
                        } else {
                            let mut any = tx.b.ins().iconst(I64, 0);
                            for f in &t.from {
                                let c = tx.b.ins().icmp_imm_s(
                                    cranelift_codegen::ir::condcodes::IntCC::Equal,
                                    state,
                                    i64::from(*f),
                                );
                                let c = tx.b.ins().uextend(I64, c);
                                any = tx.b.ins().bor(any, c);
                            }
                            tx.counts.native += 1;
                            tx.b.ins().brif(any, check, &[], next, &[]);
                        }
                        tx.b.switch_to_block(check);
                        // The transition in question, for a guard's fault.
                        let tiv = tx.b.ins().iconst(I64, ti as i64);
                        tx.b.ins().store(mem(), tiv, ctx, CTX_OUT);
                        match &t.guard {
                            None => {
                                tx.b.ins().jump(found, &[]);
                            }
                            Some(g) => {
                                // Counted with the guard's own site too: the
                                // selector inlines it.
                                let before = tx.counts;
                                let c = tx.truth(g)?;
                                tx.counts = before;
                                tx.b.ins().brif(c, found, &[], next, &[]);
                            }
                        }
                        tx.b.switch_to_block(found);
                        let ok = tx.b.ins().iconst(I64, OK);
                        tx.b.ins().return_(&[ok]);
                        tx.b.switch_to_block(next);
                    }
                    let none = tx.b.ins().iconst(I64, -1);
                    tx.b.ins().store(mem(), none, ctx, CTX_OUT);
                    let ok = tx.b.ins().iconst(I64, OK);
                    tx.b.ins().return_(&[ok]);
                }
            }
            Ok(())
        })();
        if let Err(u) = built {
            // The half-built function is dropped with the context.
            drop(tx);
            self.module.clear_context(&mut self.ctx);
            self.fctx = FunctionBuilderContext::new();
            return Ok(Err(u));
        }
        tx.b.switch_to_block(fail);
        let f = tx.b.ins().iconst(I64, FAULT);
        tx.b.ins().return_(&[f]);
        tx.b.seal_all_blocks();
        let counts = tx.counts;
        tx.b.finalize(self.module.target_config());
        self.report.nodes.native += counts.native;
        self.report.nodes.helper += counts.helper;
        self.report.nodes.interpreted += counts.interpreted;
        let id = self
            .module
            .declare_anonymous_function(&self.ctx.func.signature)
            .map_err(err)?;
        self.module
            .define_function(id, &mut self.ctx)
            .map_err(|e| CompileError(format!("{what}: {e:?}")))?;
        self.module.clear_context(&mut self.ctx);
        Ok(Ok(id))
    }

    /// The batch loop of a query's leading `where` stages: `fn(rows, n,
    /// selected)`, `rows` the address of `n` rows laid end to end, each
    /// holding the slots `projection` names of the layout's full row (so the
    /// loop reads only what its predicates need, in sequence), writes 1 or 0
    /// per row. Built only when the predicates read nothing but the event
    /// (no helper that needs the runtime); otherwise `None` and the stages
    /// run per event. Without a projection the loop is only translated, not
    /// defined: what it reads is the answer ([`Filter::reads`]).
    fn build_filter(
        &mut self,
        wheres: &[&Expr],
        layout: &EventLayout,
        projection: Option<&[u32]>,
    ) -> Result<Option<Filter>, CompileError> {
        self.module.clear_context(&mut self.ctx);
        self.ctx.func.signature = self.signature(3);
        let call_conv = self.module.isa().default_call_conv();
        let mut fb = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
        let entry = fb.create_block();
        fb.append_block_params_for_function_params(entry);
        fb.switch_to_block(entry);
        let (rows, n, sel) = {
            let p = fb.block_params(entry);
            (p[0], p[1], p[2])
        };
        // The loop carries the row's index and its address (the address
        // moves by the stride: no multiply per row). While `UNROLL` rows
        // are left it takes that many at once (one test and one jump for
        // them), then one at a time.
        let head = fb.create_block();
        fb.append_block_param(head, I64);
        fb.append_block_param(head, I64);
        let (body4, head1, body1, exit) = (
            fb.create_block(),
            fb.create_block(),
            fb.create_block(),
            fb.create_block(),
        );
        let zero = fb.ins().iconst(I64, 0);
        fb.ins().jump(
            head,
            &[ir::BlockArg::Value(zero), ir::BlockArg::Value(rows)],
        );
        fb.switch_to_block(head);
        let (k, base) = (fb.block_params(head)[0], fb.block_params(head)[1]);
        let k4 = fb.ins().iadd_imm_s(k, UNROLL as i64);
        let four = fb.ins().icmp(
            cranelift_codegen::ir::condcodes::IntCC::UnsignedLessThanOrEqual,
            k4,
            n,
        );
        fb.ins().brif(four, body4, &[], head1, &[]);
        fb.switch_to_block(head1);
        let more = fb.ins().icmp(
            cranelift_codegen::ir::condcodes::IntCC::UnsignedLessThan,
            k,
            n,
        );
        fb.ins().brif(more, body1, &[], exit, &[]);
        let width = projection.map_or(STD_SLOTS.len() + layout.fields.len(), <[u32]>::len);
        let stride = (width * SLOT_BYTES) as i64;
        fb.switch_to_block(body4);
        let null = fb.ins().iconst(I64, 0);
        // Rows `k + j` of the `UNROLL` (`j` < UNROLL), then the single row `k`:
        // each with its own block for a fault or a read that rejects by
        // itself, which writes its 0 and goes on from the next row.
        let rejects: Vec<ir::Block> = (0..=UNROLL).map(|_| fb.create_block()).collect();
        let mut scratch = Tables::default();
        let mut tx = Tx::new(fb, &mut scratch, call_conv, null, rejects[0], true);
        tx.projection = projection;
        // The stages' verdicts are combined without a branch: each reads
        // only the event (no helper, no effect), and a fault in any jumps
        // to the row's reject block, so evaluating a stage after a failed
        // one changes no verdict.
        let built: Result<(), Unsupported> = (|| {
            for (j, &reject) in rejects.iter().enumerate() {
                let single = j == UNROLL;
                if single {
                    tx.b.switch_to_block(body1);
                }
                let j = if single { 0 } else { j as i64 };
                let row = tx.b.ins().iadd_imm_s(base, j * stride);
                tx.event = Some((row, layout));
                tx.fail = reject;
                let mut all: Option<ir::Value> = None;
                for w in wheres {
                    let c = tx.truth(w)?;
                    all = Some(match all {
                        Some(a) => tx.b.ins().band(a, c),
                        None => c,
                    });
                }
                let verdict = all.unwrap_or_else(|| tx.b.ins().iconst(I64, 1));
                // selected[k + j] = the verdict (0 or 1).
                let at = tx.b.ins().iadd(sel, k);
                tx.b.ins().istore8(mem(), verdict, at, j as i32);
                if single || j as usize == UNROLL - 1 {
                    let step = j + 1;
                    let next = tx.b.ins().iadd_imm_s(k, step);
                    let next_row = tx.b.ins().iadd_imm_s(base, step * stride);
                    tx.b.ins().jump(
                        head,
                        &[ir::BlockArg::Value(next), ir::BlockArg::Value(next_row)],
                    );
                }
            }
            Ok(())
        })();
        if built.is_err() || !scratch_is_empty(&tx) {
            drop(tx);
            self.module.clear_context(&mut self.ctx);
            self.fctx = FunctionBuilderContext::new();
            return Ok(None);
        }
        let mut reads = std::mem::take(&mut tx.slots_read);
        reads.sort_unstable();
        reads.dedup();
        for (j, &reject) in rejects.iter().enumerate() {
            let j = if j == UNROLL { 0 } else { j as i64 };
            tx.b.switch_to_block(reject);
            let at = tx.b.ins().iadd(sel, k);
            let z8 = tx.b.ins().iconst(cranelift_codegen::ir::types::I8, 0);
            tx.b.ins().store(mem(), z8, at, j as i32);
            let next = tx.b.ins().iadd_imm_s(k, j + 1);
            let next_row = tx.b.ins().iadd_imm_s(base, (j + 1) * stride);
            tx.b.ins().jump(
                head,
                &[ir::BlockArg::Value(next), ir::BlockArg::Value(next_row)],
            );
        }
        tx.b.switch_to_block(exit);
        let ok = tx.b.ins().iconst(I64, OK);
        tx.b.ins().return_(&[ok]);
        tx.b.seal_all_blocks();
        tx.b.finalize(self.module.target_config());
        if projection.is_none() {
            self.module.clear_context(&mut self.ctx);
            return Ok(Some(Filter { id: None, reads }));
        }
        // String constants of the predicates must outlive the code.
        self.tables.strings.append(&mut scratch.strings);
        let id = self
            .module
            .declare_anonymous_function(&self.ctx.func.signature)
            .map_err(err)?;
        self.module
            .define_function(id, &mut self.ctx)
            .map_err(|e| CompileError(format!("batch filter: {e:?}")))?;
        self.module.clear_context(&mut self.ctx);
        Ok(Some(Filter {
            id: Some(id),
            reads,
        }))
    }
}

/// Rows a batch filter takes at once while that many are left: eight
/// rather than four took the where + count kernel's loop from 10.5 to
/// 9.8 instructions an event (its test, jump and steps spread over more
/// rows).
const UNROLL: usize = 8;

/// A batch loop may hand helpers nothing by index (no fallback subtree,
/// no statement): those need the runtime's frame.
fn scratch_is_empty(tx: &Tx<'_, '_>) -> bool {
    tx.tables.exprs.is_empty() && tx.tables.stmts.is_empty()
}

fn reads_columns(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Column(_) => true,
        ExprKind::Unary(_, a) => reads_columns(a),
        ExprKind::Binary(_, a, b) | ExprKind::Coalesce(a, b) | ExprKind::Index(a, b) => {
            reads_columns(a) || reads_columns(b)
        }
        ExprKind::Call(_, args) | ExprKind::CallFn(_, args) => args.iter().any(reads_columns),
        ExprKind::Sample { rate, .. } => reads_columns(rate),
        _ => false,
    }
}

fn mem() -> cranelift_codegen::ir::MemFlagsData {
    cranelift_codegen::ir::MemFlagsData::trusted()
}
