//! IR to CLIF: one [`Tx`] per compiled function turns expressions and
//! statements into cranelift instructions over compact slot rows.
//!
//! A value in flight is a [`Cv`]: a presence tag (0 or 1), 64 payload bits
//! (an `i64`, the bits of an `f64`, a bool as 0/1, a string's address) and
//! a length (strings). An absent value always has zero bits and length, so
//! arithmetic on it is harmless; every fault condition is masked by "both
//! operands present", exactly as the interpreter, which yields `none`
//! without faulting when an operand is absent.
//!
//! What is not compiled inline goes through a helper of [`crate::abi`]:
//! reads and writes of locals, variables and state slots (they live in the
//! runtime's frames), effects, string operations that allocate, and, per
//! subtree, whatever the JIT does not translate (map and `dyn` values,
//! program functions, most library calls), which the interpreter
//! evaluates. [`Counts`] says how many IR nodes went each way.

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F64, I8, I64};
use cranelift_codegen::ir::{
    self, AbiParam, Block, BlockArg, InstBuilder, MemFlagsData, Signature, StackSlot,
    StackSlotData, StackSlotKind,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::FunctionBuilder;
use dtc_engine::slots::{SLOT_BYTES, field_slot, std_slot};
use dtc_ir::*;

use crate::abi::*;

/// IR nodes by how the JIT runs them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Compiled to inline machine code.
    pub native: u64,
    /// Compiled to a call of a runtime helper (state reads and writes,
    /// effects, allocating string operations, `is`, `sample`).
    pub helper: u64,
    /// Evaluated by the interpreter, as a subtree or a whole construct.
    pub interpreted: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.native + self.helper + self.interpreted
    }
}

/// IR the compiled code hands to helpers by index, and the constants it
/// points at. Immutable once compiled.
#[derive(Default)]
pub(crate) struct Tables {
    pub exprs: Vec<Expr>,
    pub stmts: Vec<Stmt>,
    pub strings: Vec<Box<[u8]>>,
}

/// Why a construct is not compiled (it then runs on the interpreter).
#[derive(Debug)]
pub(crate) struct Unsupported(pub String);

type R<T> = Result<T, Unsupported>;

/// A value in flight.
#[derive(Clone, Copy)]
pub(crate) struct Cv {
    pub tag: ir::Value,
    pub bits: ir::Value,
    pub len: ir::Value,
}

/// Types whose values fit a slot and that compiled code computes with.
pub(crate) fn native_type(t: &Type) -> bool {
    match t {
        Type::Bool
        | Type::Int
        | Type::Float
        | Type::Str
        | Type::Duration
        | Type::Timestamp
        | Type::Percent
        | Type::None => true,
        Type::Opt(i) => native_type(i) && **i != Type::None,
        _ => false,
    }
}

/// The number of IR nodes in an expression.
pub(crate) fn expr_nodes(e: &Expr) -> u64 {
    1 + match &e.kind {
        ExprKind::Unary(_, a) => expr_nodes(a),
        ExprKind::Binary(_, a, b) | ExprKind::Coalesce(a, b) | ExprKind::Index(a, b) => {
            expr_nodes(a) + expr_nodes(b)
        }
        ExprKind::Call(_, args) | ExprKind::CallFn(_, args) => args.iter().map(expr_nodes).sum(),
        ExprKind::Sample { rate, .. } => expr_nodes(rate),
        _ => 0,
    }
}

fn place_nodes(p: &Place) -> u64 {
    match p {
        Place::Entry(b, k) => 1 + place_nodes(b) + expr_nodes(k),
        _ => 1,
    }
}

/// The number of IR nodes in statements.
pub(crate) fn stmt_nodes(body: &[Stmt]) -> u64 {
    body.iter()
        .map(|s| {
            1 + match s {
                Stmt::Let(_, e) | Stmt::Return(e) | Stmt::Expr(e) => expr_nodes(e),
                Stmt::Assign { place, value, .. } => place_nodes(place) + expr_nodes(value),
                Stmt::If {
                    cond,
                    then,
                    otherwise,
                } => expr_nodes(cond) + stmt_nodes(then) + stmt_nodes(otherwise),
                Stmt::IfLet {
                    value,
                    then,
                    otherwise,
                    ..
                } => expr_nodes(value) + stmt_nodes(then) + stmt_nodes(otherwise),
                Stmt::ForRange { body, .. } => stmt_nodes(body),
                Stmt::ForMap { map, body, .. } => place_nodes(map) + stmt_nodes(body),
                Stmt::Emit { fields, .. } => fields.iter().map(|(_, e)| expr_nodes(e)).sum(),
                Stmt::Trigger { args, .. } => args.iter().map(|(_, e)| expr_nodes(e)).sum(),
            }
        })
        .sum()
}

/// Builds one function.
pub(crate) struct Tx<'a, 'b> {
    pub b: FunctionBuilder<'b>,
    pub tables: &'a mut Tables,
    pub counts: Counts,
    pub call_conv: CallConv,
    /// `*mut NativeCtx` (null in a batch loop).
    pub ctx: ir::Value,
    /// The current event's row.
    pub event: Option<(ir::Value, &'a EventLayout)>,
    /// Which slots of the event's full row the row at `event` holds, in
    /// order (a batch filter's projected rows); `None`: the full row.
    pub projection: Option<&'a [u32]>,
    /// The full-row slots of the event read so far.
    pub slots_read: Vec<u32>,
    pub row: Option<(ir::Value, u32)>,
    pub batch: bool,
    /// Where a fault goes once recorded.
    pub fail: Block,
    /// Where a `return` goes (bodies).
    pub ret: Option<Block>,
    sigs: HashMap<&'static str, ir::SigRef>,
    scratch: Option<StackSlot>,
}

fn mem() -> MemFlagsData {
    MemFlagsData::trusted()
}

fn arg(v: ir::Value) -> BlockArg {
    BlockArg::Value(v)
}

impl<'a, 'b> Tx<'a, 'b> {
    pub fn new(
        b: FunctionBuilder<'b>,
        tables: &'a mut Tables,
        call_conv: CallConv,
        ctx: ir::Value,
        fail: Block,
        batch: bool,
    ) -> Tx<'a, 'b> {
        Tx {
            b,
            tables,
            counts: Counts::default(),
            call_conv,
            ctx,
            event: None,
            projection: None,
            slots_read: Vec::new(),
            row: None,
            batch,
            fail,
            ret: None,
            sigs: HashMap::new(),
            scratch: None,
        }
    }

    // ------------------------------------------------------------ plumbing

    fn iconst(&mut self, v: i64) -> ir::Value {
        self.b.ins().iconst(I64, v)
    }

    fn absent(&mut self) -> Cv {
        let z = self.iconst(0);
        Cv {
            tag: z,
            bits: z,
            len: z,
        }
    }

    fn present(&mut self, bits: ir::Value) -> Cv {
        let one = self.iconst(1);
        let zero = self.iconst(0);
        Cv {
            tag: one,
            bits,
            len: zero,
        }
    }

    /// A bool (i8 from a comparison) as a 0/1 `i64`.
    fn widen(&mut self, c: ir::Value) -> ir::Value {
        self.b.ins().uextend(I64, c)
    }

    fn f(&mut self, bits: ir::Value) -> ir::Value {
        self.b.ins().bitcast(F64, MemFlagsData::new(), bits)
    }

    fn unf(&mut self, x: ir::Value) -> ir::Value {
        self.b.ins().bitcast(I64, MemFlagsData::new(), x)
    }

    fn scratch(&mut self) -> ir::Value {
        let ss = match self.scratch {
            Some(s) => s,
            None => {
                let s = self.b.create_sized_stack_slot(StackSlotData::new(
                    StackSlotKind::ExplicitSlot,
                    SLOT_BYTES as u32,
                    3,
                ));
                self.scratch = Some(s);
                s
            }
        };
        self.b.ins().stack_addr(I64, ss, 0)
    }

    /// Where slot `index` of the event's full row is in the row at hand
    /// (see `projection`), noting that it is read.
    fn event_slot(&mut self, index: u32) -> Result<u32, Unsupported> {
        self.slots_read.push(index);
        match self.projection {
            None => Ok(index),
            Some(p) => p
                .iter()
                .position(|&s| s == index)
                .map(|at| at as u32)
                .ok_or_else(|| Unsupported(format!("slot {index} is not in the projected row"))),
        }
    }

    fn load_slot(&mut self, base: ir::Value, index: u32, ty: &Type) -> Cv {
        let off = (index as usize * SLOT_BYTES) as i32;
        let bits = self.b.ins().load(I64, mem(), base, off);
        let tag = if ty.is_opt() || *ty == Type::None {
            self.b.ins().uload32(mem(), base, off + 12)
        } else {
            self.iconst(1)
        };
        let len = if *ty.inner() == Type::Str {
            self.b.ins().uload32(mem(), base, off + 8)
        } else {
            self.iconst(0)
        };
        Cv { tag, bits, len }
    }

    /// Writes a value to memory as a slot.
    fn store_slot(&mut self, v: Cv, base: ir::Value, off: i32) {
        self.b.ins().store(mem(), v.bits, base, off);
        self.b.ins().istore32(mem(), v.len, base, off + 8);
        self.b.ins().istore32(mem(), v.tag, base, off + 12);
    }

    fn call(
        &mut self,
        name: &'static str,
        f: *const u8,
        params: &[ir::Type],
        ret: Option<ir::Type>,
        args: &[ir::Value],
    ) -> Option<ir::Value> {
        let sig = match self.sigs.get(name) {
            Some(s) => *s,
            None => {
                let mut sig = Signature::new(self.call_conv);
                sig.params.extend(params.iter().map(|t| AbiParam::new(*t)));
                sig.returns.extend(ret.map(AbiParam::new));
                let s = self.b.import_signature(sig);
                self.sigs.insert(name, s);
                s
            }
        };
        let callee = self.b.ins().iconst(I64, f as usize as i64);
        let call = self.b.ins().call_indirect(sig, callee, args);
        self.b.inst_results(call).first().copied()
    }

    fn need_ctx(&self, what: &str) -> R<()> {
        if self.batch {
            return Err(Unsupported(format!("{what} needs the runtime")));
        }
        Ok(())
    }

    /// Continues only when `status` is OK; otherwise the fault (already
    /// recorded by the helper) leaves the function.
    fn check_status(&mut self, status: ir::Value) {
        let cont = self.b.create_block();
        let fail = self.fail;
        self.b.ins().brif(status, fail, &[], cont, &[]);
        self.b.switch_to_block(cont);
    }

    /// Raises fault `code` when `cond` (an i8 or i64 truth value) holds.
    fn fault_if(&mut self, cond: ir::Value, code: i64) {
        let cont = self.b.create_block();
        let raise = self.b.create_block();
        self.b.ins().brif(cond, raise, &[], cont, &[]);
        self.b.switch_to_block(raise);
        if !self.batch {
            let c = self.iconst(code);
            let ctx = self.ctx;
            self.call(
                "h_fault",
                h_fault as *const u8,
                &[I64, I64],
                None,
                &[ctx, c],
            );
        }
        let fail = self.fail;
        self.b.ins().jump(fail, &[]);
        self.b.switch_to_block(cont);
    }

    /// A block with the three parameters of a value.
    fn merge_block(&mut self) -> Block {
        let m = self.b.create_block();
        for _ in 0..3 {
            self.b.append_block_param(m, I64);
        }
        m
    }

    fn jump_with(&mut self, to: Block, v: Cv) {
        self.b
            .ins()
            .jump(to, &[arg(v.tag), arg(v.bits), arg(v.len)]);
    }

    fn merged(&mut self, m: Block) -> Cv {
        self.b.switch_to_block(m);
        let p = self.b.block_params(m);
        Cv {
            tag: p[0],
            bits: p[1],
            len: p[2],
        }
    }

    // --------------------------------------------------------- expressions

    /// The interpreter evaluates `e` (a subtree the JIT does not compile).
    fn fallback(&mut self, e: &Expr) -> R<Cv> {
        self.need_ctx("an interpreted subtree")?;
        self.counts.interpreted += expr_nodes(e);
        let id = self.tables.exprs.len() as i64;
        self.tables.exprs.push(e.clone());
        let out = self.scratch();
        let (ctx, idv) = (self.ctx, self.iconst(id));
        let status = self
            .call(
                "h_interp_expr",
                h_interp_expr as *const u8,
                &[I64, I64, I64],
                Some(I64),
                &[ctx, idv, out],
            )
            .unwrap_or(idv);
        self.check_status(status);
        let out = self.scratch();
        Ok(self.load_slot(out, 0, &opt_of(&e.ty)))
    }

    /// An expression whose value is only evaluated (for its faults and
    /// effects) and then dropped: any type.
    pub fn discard(&mut self, e: &Expr) -> R<()> {
        if native_type(&e.ty) {
            self.expr(e)?;
        } else {
            self.fallback(e)?;
        }
        Ok(())
    }

    pub fn expr(&mut self, e: &Expr) -> R<Cv> {
        if !native_type(&e.ty) {
            return Err(Unsupported(format!("a value of type {}", e.ty)));
        }
        match &e.kind {
            ExprKind::Const(c) => {
                self.counts.native += 1;
                Ok(self.constant(c))
            }
            ExprKind::Field(slot) => {
                self.counts.native += 1;
                match self.event {
                    Some((base, layout)) if (*slot as usize) < layout.fields.len() => {
                        // Always read the tag: a derived event may hold
                        // `none` even in a field declared non-optional.
                        let ty = opt_of(&layout.fields[*slot as usize].ty);
                        let at = self.event_slot(field_slot(*slot))?;
                        Ok(self.load_slot(base, at, &ty))
                    }
                    _ => Ok(self.absent()),
                }
            }
            ExprKind::Std(s) => match (std_slot(*s), self.event) {
                (Some(i), Some((base, _))) => {
                    self.counts.native += 1;
                    let at = self.event_slot(i)?;
                    Ok(self.load_slot(base, at, &s.ty()))
                }
                (Some(_), None) => {
                    self.counts.native += 1;
                    Ok(self.absent())
                }
                (None, _) => self.fallback(e),
            },
            ExprKind::Local(i) => self.read(0, *i, &e.ty),
            ExprKind::Var(i) => self.read(1, *i, &e.ty),
            ExprKind::StateVar(i) => self.read(2, *i, &e.ty),
            ExprKind::Column(i) => {
                self.counts.native += 1;
                match self.row {
                    Some((base, width)) if *i < width => {
                        Ok(self.load_slot(base, *i, &opt_of(&e.ty)))
                    }
                    _ => Ok(self.absent()),
                }
            }
            ExprKind::Unary(op, a) if native_type(&a.ty) => self.unary(*op, a),
            ExprKind::Binary(op @ (BinOp::And | BinOp::Or), a, b)
                if native_type(&a.ty) && native_type(&b.ty) =>
            {
                self.logic(*op == BinOp::And, a, b)
            }
            ExprKind::Binary(op, a, b) if native_type(&a.ty) && native_type(&b.ty) => {
                self.binary(*op, a, b, e)
            }
            ExprKind::Coalesce(a, b) if native_type(&a.ty) && native_type(&b.ty) => {
                self.counts.native += 1;
                let x = self.expr(a)?;
                let m = self.merge_block();
                let other = self.b.create_block();
                self.b
                    .ins()
                    .brif(x.tag, m, &[arg(x.tag), arg(x.bits), arg(x.len)], other, &[]);
                self.b.switch_to_block(other);
                let y = self.expr(b)?;
                self.jump_with(m, y);
                Ok(self.merged(m))
            }
            ExprKind::Call(name, args) if args.iter().all(|a| native_type(&a.ty)) => {
                match self.call_fn(name, args)? {
                    Some(v) => Ok(v),
                    None => self.fallback(e),
                }
            }
            ExprKind::Sample { rate, site } if native_type(&rate.ty) => {
                self.need_ctx("sample")?;
                self.counts.helper += 1;
                let r = self.expr(rate)?;
                let (ctx, s) = (self.ctx, self.iconst(i64::from(*site)));
                let hit = self
                    .call(
                        "h_sample",
                        h_sample as *const u8,
                        &[I64; 4],
                        Some(I64),
                        &[ctx, s, r.tag, r.bits],
                    )
                    .unwrap_or(s);
                Ok(self.present(hit))
            }
            ExprKind::InState { machine, state } => {
                if self.event.is_none() {
                    self.counts.native += 1;
                    let f = self.iconst(0);
                    return Ok(self.present(f));
                }
                self.need_ctx("is")?;
                self.counts.helper += 1;
                let ctx = self.ctx;
                let (m, s) = (
                    self.iconst(i64::from(*machine)),
                    self.iconst(i64::from(*state)),
                );
                let v = self
                    .call(
                        "h_in_state",
                        h_in_state as *const u8,
                        &[I64; 3],
                        Some(I64),
                        &[ctx, m, s],
                    )
                    .unwrap_or(m);
                Ok(self.present(v))
            }
            _ => self.fallback(e),
        }
    }

    fn constant(&mut self, c: &Const) -> Cv {
        match c {
            Const::Bool(b) => {
                let v = self.iconst(i64::from(*b));
                self.present(v)
            }
            Const::Int(i) | Const::Duration(i) => {
                let v = self.iconst(*i);
                self.present(v)
            }
            Const::Float(x) | Const::Percent(x) => {
                let v = self.iconst(x.to_bits() as i64);
                self.present(v)
            }
            Const::Str(s) => {
                let bytes: Box<[u8]> = s.as_bytes().into();
                // The box's heap address is stable: the tables own it for as
                // long as the compiled code exists.
                let ptr = bytes.as_ptr() as usize as i64;
                let len = bytes.len() as i64;
                self.tables.strings.push(bytes);
                let (tag, bits, len) = (self.iconst(1), self.iconst(ptr), self.iconst(len));
                Cv { tag, bits, len }
            }
            Const::None => self.absent(),
        }
    }

    fn read(&mut self, space: i64, idx: u32, ty: &Type) -> R<Cv> {
        self.need_ctx("a variable")?;
        self.counts.helper += 1;
        let out = self.scratch();
        let (ctx, sp, ix) = (self.ctx, self.iconst(space), self.iconst(i64::from(idx)));
        self.call(
            "h_read",
            h_read as *const u8,
            &[I64; 4],
            None,
            &[ctx, sp, ix, out],
        );
        let out = self.scratch();
        Ok(self.load_slot(out, 0, &opt_of(ty)))
    }

    fn unary(&mut self, op: UnOp, a: &Expr) -> R<Cv> {
        self.counts.native += 1;
        let x = self.expr(a)?;
        let zero = self.iconst(0);
        match (op, a.ty.inner()) {
            (UnOp::Not, Type::Bool) => {
                let bits = self.b.ins().bxor_imm_s(x.bits, 1);
                let bits = self.b.ins().band(bits, x.tag);
                Ok(Cv {
                    tag: x.tag,
                    bits,
                    len: zero,
                })
            }
            (UnOp::Neg, Type::Int | Type::Duration) => {
                let min = self.b.ins().icmp_imm_s(IntCC::Equal, x.bits, i64::MIN);
                self.fault_if(min, F_SUB);
                let bits = self.b.ins().ineg(x.bits);
                Ok(Cv {
                    tag: x.tag,
                    bits,
                    len: zero,
                })
            }
            (UnOp::Neg, Type::Float) => {
                // Flip the sign bit; an absent value keeps zero bits.
                let sign = self.iconst(i64::MIN);
                let masked = self.b.ins().imul(sign, x.tag);
                let bits = self.b.ins().bxor(x.bits, masked);
                Ok(Cv {
                    tag: x.tag,
                    bits,
                    len: zero,
                })
            }
            _ => Ok(self.absent()),
        }
    }

    fn logic(&mut self, is_and: bool, a: &Expr, b: &Expr) -> R<Cv> {
        self.counts.native += 1;
        let x = self.expr(a)?;
        let xt = self.b.ins().band(x.tag, x.bits);
        let m = self.b.create_block();
        self.b.append_block_param(m, I64);
        let other = self.b.create_block();
        if is_and {
            let zero = self.iconst(0);
            self.b.ins().brif(xt, other, &[], m, &[arg(zero)]);
        } else {
            let one = self.iconst(1);
            self.b.ins().brif(xt, m, &[arg(one)], other, &[]);
        }
        self.b.switch_to_block(other);
        let y = self.expr(b)?;
        let yt = self.b.ins().band(y.tag, y.bits);
        self.b.ins().jump(m, &[arg(yt)]);
        self.b.switch_to_block(m);
        let r = self.b.block_params(m)[0];
        Ok(self.present(r))
    }

    /// Byte equality of two strings of which at least one is present or
    /// both are empty (absent strings have length 0 and are never read).
    fn str_eq(&mut self, x: Cv, y: Cv) -> ir::Value {
        let done = self.b.create_block();
        self.b.append_block_param(done, I64);
        let head = self.b.create_block();
        self.b.append_block_param(head, I64);
        let body = self.b.create_block();
        let same_len = self.b.ins().icmp(IntCC::Equal, x.len, y.len);
        let (zero, one) = (self.iconst(0), self.iconst(1));
        self.b
            .ins()
            .brif(same_len, head, &[arg(zero)], done, &[arg(zero)]);
        self.b.switch_to_block(head);
        let i = self.b.block_params(head)[0];
        let at_end = self.b.ins().icmp(IntCC::Equal, i, x.len);
        self.b.ins().brif(at_end, done, &[arg(one)], body, &[]);
        self.b.switch_to_block(body);
        let pa = self.b.ins().iadd(x.bits, i);
        let pb = self.b.ins().iadd(y.bits, i);
        let ca = self.b.ins().uload8(I64, mem(), pa, 0);
        let cb = self.b.ins().uload8(I64, mem(), pb, 0);
        let next = self.b.ins().iadd_imm_s(i, 1);
        let eq = self.b.ins().icmp(IntCC::Equal, ca, cb);
        self.b
            .ins()
            .brif(eq, head, &[arg(next)], done, &[arg(zero)]);
        self.b.switch_to_block(done);
        self.b.block_params(done)[0]
    }

    fn binary(&mut self, op: BinOp, a: &Expr, b: &Expr, whole: &Expr) -> R<Cv> {
        let (ta, tb) = (a.ty.inner().clone(), b.ty.inner().clone());
        let kind = if ta == Type::None {
            tb.clone()
        } else {
            ta.clone()
        };
        match op {
            BinOp::Eq | BinOp::Ne => {
                self.counts.native += 1;
                let x = self.expr(a)?;
                let y = self.expr(b)?;
                let payload = match kind {
                    Type::Str => self.str_eq(x, y),
                    Type::Float | Type::Percent => {
                        let (fx, fy) = (self.f(x.bits), self.f(y.bits));
                        let c = self.b.ins().fcmp(FloatCC::Equal, fx, fy);
                        self.widen(c)
                    }
                    Type::None => self.iconst(1),
                    _ => {
                        let c = self.b.ins().icmp(IntCC::Equal, x.bits, y.bits);
                        self.widen(c)
                    }
                };
                // Equal: both absent, or both present with equal payloads.
                let same_tag = self.b.ins().icmp(IntCC::Equal, x.tag, y.tag);
                let same_tag = self.widen(same_tag);
                let absent = self.b.ins().bxor_imm_s(x.tag, 1);
                let either = self.b.ins().bor(absent, payload);
                let mut eq = self.b.ins().band(same_tag, either);
                if op == BinOp::Ne {
                    eq = self.b.ins().bxor_imm_s(eq, 1);
                }
                Ok(self.present(eq))
            }
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                self.counts.native += 1;
                let x = self.expr(a)?;
                let y = self.expr(b)?;
                let both = self.b.ins().band(x.tag, y.tag);
                let c = match kind {
                    Type::Int | Type::Duration | Type::Timestamp => {
                        let cc = match op {
                            BinOp::Lt => IntCC::SignedLessThan,
                            BinOp::Le => IntCC::SignedLessThanOrEqual,
                            BinOp::Gt => IntCC::SignedGreaterThan,
                            _ => IntCC::SignedGreaterThanOrEqual,
                        };
                        let c = self.b.ins().icmp(cc, x.bits, y.bits);
                        self.widen(c)
                    }
                    Type::Float | Type::Percent => {
                        let cc = match op {
                            BinOp::Lt => FloatCC::LessThan,
                            BinOp::Le => FloatCC::LessThanOrEqual,
                            BinOp::Gt => FloatCC::GreaterThan,
                            _ => FloatCC::GreaterThanOrEqual,
                        };
                        let (fx, fy) = (self.f(x.bits), self.f(y.bits));
                        let c = self.b.ins().fcmp(cc, fx, fy);
                        self.widen(c)
                    }
                    Type::Str => {
                        self.counts.native -= 1;
                        self.counts.helper += 1;
                        let o = self
                            .call(
                                "h_str_cmp",
                                h_str_cmp as *const u8,
                                &[I64; 4],
                                Some(I64),
                                &[x.bits, x.len, y.bits, y.len],
                            )
                            .unwrap_or(both);
                        let cc = match op {
                            BinOp::Lt => IntCC::SignedLessThan,
                            BinOp::Le => IntCC::SignedLessThanOrEqual,
                            BinOp::Gt => IntCC::SignedGreaterThan,
                            _ => IntCC::SignedGreaterThanOrEqual,
                        };
                        let c = self.b.ins().icmp_imm_s(cc, o, 0);
                        self.widen(c)
                    }
                    _ => self.iconst(0),
                };
                let r = self.b.ins().band(both, c);
                Ok(self.present(r))
            }
            _ => self.arith(op, &ta, &tb, a, b, whole),
        }
    }

    fn arith(
        &mut self,
        op: BinOp,
        ta: &Type,
        tb: &Type,
        a: &Expr,
        b: &Expr,
        whole: &Expr,
    ) -> R<Cv> {
        use Type as T;
        #[derive(PartialEq)]
        enum K {
            Int(i64),
            Float,
            Concat,
            DurRatio,
            Absent,
        }
        let k = match (op, ta, tb) {
            (BinOp::Add, T::Int, T::Int)
            | (BinOp::Add, T::Duration, T::Duration)
            | (BinOp::Add, T::Timestamp, T::Duration)
            | (BinOp::Add, T::Duration, T::Timestamp) => K::Int(F_ADD),
            (BinOp::Add, T::Str, T::Str) => K::Concat,
            (BinOp::Sub, T::Int, T::Int)
            | (BinOp::Sub, T::Duration, T::Duration)
            | (BinOp::Sub, T::Timestamp, T::Duration)
            | (BinOp::Sub, T::Timestamp, T::Timestamp) => K::Int(F_SUB),
            (BinOp::Mul, T::Int, T::Int)
            | (BinOp::Mul, T::Duration, T::Int)
            | (BinOp::Mul, T::Int, T::Duration) => K::Int(F_MUL),
            (BinOp::Div, T::Int, T::Int) | (BinOp::Div, T::Duration, T::Int) => K::Int(F_DIV),
            (BinOp::Div, T::Duration, T::Duration) => K::DurRatio,
            (BinOp::Rem, T::Int, T::Int) => K::Int(F_REM),
            (
                BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem,
                T::Float,
                T::Float,
            ) => K::Float,
            _ => K::Absent,
        };
        if k == K::Concat {
            self.need_ctx("string concatenation")?;
        }
        let x = self.expr(a)?;
        let y = self.expr(b)?;
        let both = self.b.ins().band(x.tag, y.tag);
        let zero = self.iconst(0);
        let bits = match k {
            K::Absent => {
                self.counts.native += 1;
                return Ok(self.absent());
            }
            K::Int(code) => {
                self.counts.native += 1;
                let (r, of) = match code {
                    F_ADD => self.b.ins().sadd_overflow(x.bits, y.bits),
                    F_SUB => self.b.ins().ssub_overflow(x.bits, y.bits),
                    F_MUL => self.b.ins().smul_overflow(x.bits, y.bits),
                    _ => {
                        // Division and remainder: zero first, then MIN / -1,
                        // as the interpreter checks them.
                        let is_zero = self.b.ins().icmp_imm_s(IntCC::Equal, y.bits, 0);
                        let is_zero = self.widen(is_zero);
                        let z = self.b.ins().band(both, is_zero);
                        self.fault_if(z, F_DIV_ZERO);
                        let min = self.b.ins().icmp_imm_s(IntCC::Equal, x.bits, i64::MIN);
                        let neg1 = self.b.ins().icmp_imm_s(IntCC::Equal, y.bits, -1);
                        let o = self.b.ins().band(min, neg1);
                        let o = self.widen(o);
                        let o = self.b.ins().band(both, o);
                        self.fault_if(o, code);
                        // Absent operands divide by one: no trap, and the
                        // result is masked below.
                        let one = self.iconst(1);
                        let safe = self.b.ins().select(both, y.bits, one);
                        let r = if code == F_DIV {
                            self.b.ins().sdiv(x.bits, safe)
                        } else {
                            self.b.ins().srem(x.bits, safe)
                        };
                        let no = self.b.ins().iconst(I8, 0);
                        (r, no)
                    }
                };
                let of = self.widen(of);
                let of = self.b.ins().band(both, of);
                self.fault_if(of, code);
                r
            }
            K::Float => {
                self.counts.native += 1;
                let (fx, fy) = (self.f(x.bits), self.f(y.bits));
                let r = match op {
                    BinOp::Add => self.b.ins().fadd(fx, fy),
                    BinOp::Sub => self.b.ins().fsub(fx, fy),
                    BinOp::Mul => self.b.ins().fmul(fx, fy),
                    BinOp::Div => self.b.ins().fdiv(fx, fy),
                    _ => {
                        self.counts.native -= 1;
                        self.counts.helper += 1;
                        self.call(
                            "h_fmod",
                            h_fmod as *const u8,
                            &[F64, F64],
                            Some(F64),
                            &[fx, fy],
                        )
                        .unwrap_or(fx)
                    }
                };
                self.unf(r)
            }
            K::DurRatio => {
                self.counts.native += 1;
                let is_zero = self.b.ins().icmp_imm_s(IntCC::Equal, y.bits, 0);
                let is_zero = self.widen(is_zero);
                let z = self.b.ins().band(both, is_zero);
                self.fault_if(z, F_DIV_ZERO);
                let fx = self.b.ins().fcvt_from_sint(F64, x.bits);
                let fy = self.b.ins().fcvt_from_sint(F64, y.bits);
                let r = self.b.ins().fdiv(fx, fy);
                self.unf(r)
            }
            K::Concat => {
                self.counts.helper += 1;
                let m = self.merge_block();
                let go = self.b.create_block();
                let none = self.absent();
                self.b.ins().brif(
                    both,
                    go,
                    &[],
                    m,
                    &[arg(none.tag), arg(none.bits), arg(none.len)],
                );
                self.b.switch_to_block(go);
                let out = self.scratch();
                let ctx = self.ctx;
                self.call(
                    "h_concat",
                    h_concat as *const u8,
                    &[I64; 6],
                    None,
                    &[ctx, x.bits, x.len, y.bits, y.len, out],
                );
                let out = self.scratch();
                let v = self.load_slot(out, 0, &whole.ty);
                self.jump_with(m, v);
                return Ok(self.merged(m));
            }
        };
        let bits = self.b.ins().select(both, bits, zero);
        Ok(Cv {
            tag: both,
            bits,
            len: zero,
        })
    }

    /// Library calls compiled here; `None` for the others (interpreted).
    fn call_fn(&mut self, name: &str, args: &[Expr]) -> R<Option<Cv>> {
        let ty = |i: usize| args.get(i).map(|a| a.ty.inner().clone());
        let zero = self.iconst(0);
        Ok(Some(match (name, ty(0), ty(1), args.len()) {
            ("len", Some(Type::Str), None, 1) => {
                self.counts.native += 1;
                let x = self.expr(&args[0])?;
                self.present(x.len)
            }
            ("contains" | "starts_with" | "ends_with", Some(Type::Str), Some(Type::Str), 2) => {
                self.counts.helper += 1;
                let x = self.expr(&args[0])?;
                let y = self.expr(&args[1])?;
                let code = self.iconst(match name {
                    "contains" => 0,
                    "starts_with" => 1,
                    _ => 2,
                });
                let r = self
                    .call(
                        "h_str_test",
                        h_str_test as *const u8,
                        &[I64; 5],
                        Some(I64),
                        &[code, x.bits, x.len, y.bits, y.len],
                    )
                    .unwrap_or(zero);
                self.present(r)
            }
            ("extension", Some(Type::Str), None, 1) => {
                self.counts.helper += 1;
                let x = self.expr(&args[0])?;
                let out = self.scratch();
                self.call(
                    "h_extension",
                    h_extension as *const u8,
                    &[I64; 3],
                    None,
                    &[x.bits, x.len, out],
                );
                let out = self.scratch();
                self.load_slot(out, 0, &Type::Str)
            }
            ("abs", Some(Type::Int), None, 1) => {
                self.counts.native += 1;
                let x = self.expr(&args[0])?;
                let min = self.b.ins().icmp_imm_s(IntCC::Equal, x.bits, i64::MIN);
                self.fault_if(min, F_ABS);
                let bits = self.b.ins().iabs(x.bits);
                Cv {
                    tag: x.tag,
                    bits,
                    len: zero,
                }
            }
            ("abs", Some(Type::Float), None, 1) => {
                self.counts.native += 1;
                let x = self.expr(&args[0])?;
                let bits = self.b.ins().band_imm_s(x.bits, i64::MAX);
                Cv {
                    tag: x.tag,
                    bits,
                    len: zero,
                }
            }
            ("millis", Some(Type::Duration), None, 1) => {
                self.counts.native += 1;
                let x = self.expr(&args[0])?;
                let million = self.iconst(1_000_000);
                let bits = self.b.ins().sdiv(x.bits, million);
                Cv {
                    tag: x.tag,
                    bits,
                    len: zero,
                }
            }
            ("seconds", Some(Type::Duration), None, 1) => {
                self.counts.native += 1;
                let x = self.expr(&args[0])?;
                let fx = self.b.ins().fcvt_from_sint(F64, x.bits);
                let g = self.b.ins().f64const(1e9);
                let r = self.b.ins().fdiv(fx, g);
                let bits = self.unf(r);
                let bits = self.b.ins().select(x.tag, bits, zero);
                Cv {
                    tag: x.tag,
                    bits,
                    len: zero,
                }
            }
            ("to_float", Some(Type::Int), None, 1) => {
                self.counts.native += 1;
                let x = self.expr(&args[0])?;
                let fx = self.b.ins().fcvt_from_sint(F64, x.bits);
                let bits = self.unf(fx);
                Cv {
                    tag: x.tag,
                    bits,
                    len: zero,
                }
            }
            _ => return Ok(None),
        }))
    }

    /// Truth of a condition as the interpreter tests it (`== true`).
    pub fn truth(&mut self, e: &Expr) -> R<ir::Value> {
        let c = self.expr(e)?;
        // A present 0 or 1 (a comparison's result) is its own truth: the
        // `band` with 1 cranelift does not fold was an instruction a row
        // of a batch filter.
        for (one, other) in [(c.tag, c.bits), (c.bits, c.tag)] {
            if self.is_const(one, 1) && self.is_bit(other, 4) {
                return Ok(other);
            }
        }
        Ok(self.b.ins().band(c.tag, c.bits))
    }

    /// Whether `v` is the constant `k`.
    fn is_const(&self, v: ir::Value, k: i64) -> bool {
        let dfg = &self.b.func.dfg;
        let ir::ValueDef::Result(inst, 0) = dfg.value_def(v) else {
            return false;
        };
        matches!(dfg.insts[inst], ir::InstructionData::UnaryImm { opcode: ir::Opcode::Iconst, imm } if imm.bits() == k)
    }

    /// Whether `v` is an `i64` that is 0 or 1 by how it is made (looking
    /// `depth` instructions back): the constants, a comparison's result
    /// widened, a `band` with such a value.
    fn is_bit(&self, v: ir::Value, depth: u32) -> bool {
        let dfg = &self.b.func.dfg;
        let ir::ValueDef::Result(inst, 0) = dfg.value_def(v) else {
            return false;
        };
        if dfg.value_type(v) != I64 || depth == 0 {
            return false;
        }
        match dfg.insts[inst].opcode() {
            ir::Opcode::Iconst => self.is_const(v, 0) || self.is_const(v, 1),
            ir::Opcode::Uextend => dfg.inst_args(inst).first().is_some_and(|&a| {
                matches!(dfg.value_def(a), ir::ValueDef::Result(c, 0)
                    if matches!(dfg.insts[c].opcode(), ir::Opcode::Icmp | ir::Opcode::Fcmp))
            }),
            ir::Opcode::Band => dfg
                .inst_args(inst)
                .iter()
                .any(|&a| self.is_bit(a, depth - 1)),
            _ => false,
        }
    }

    // ---------------------------------------------------------- statements

    /// The interpreter runs statement `s`.
    fn stmt_fallback(&mut self, s: &Stmt) -> R<()> {
        self.counts.interpreted += stmt_nodes(std::slice::from_ref(s));
        let id = self.tables.stmts.len() as i64;
        self.tables.stmts.push(s.clone());
        let (ctx, idv) = (self.ctx, self.iconst(id));
        let status = self
            .call(
                "h_interp_stmt",
                h_interp_stmt as *const u8,
                &[I64; 2],
                Some(I64),
                &[ctx, idv],
            )
            .unwrap_or(idv);
        // 0: next; 1: fault; 2: returned.
        let cont = self.b.create_block();
        let not_next = self.b.create_block();
        self.b.ins().brif(status, not_next, &[], cont, &[]);
        self.b.switch_to_block(not_next);
        let returned = self.b.ins().icmp_imm_s(IntCC::Equal, status, RETURNED);
        let ret = self.ret.unwrap_or(self.fail);
        let fail = self.fail;
        self.b.ins().brif(returned, ret, &[], fail, &[]);
        self.b.switch_to_block(cont);
        Ok(())
    }

    /// Stores a value in a stack slot for a helper; returns its address.
    fn spill(&mut self, v: Cv) -> ir::Value {
        let a = self.scratch();
        self.store_slot(v, a, 0);
        a
    }

    fn set_local(&mut self, local: u32, v: Cv, ty: &Type) {
        self.counts.helper += 1;
        let a = self.spill(v);
        let (ctx, l, c) = (
            self.ctx,
            self.iconst(i64::from(local)),
            self.iconst(type_code(ty)),
        );
        let status = self
            .call(
                "h_set_local",
                h_set_local as *const u8,
                &[I64; 4],
                Some(I64),
                &[ctx, l, c, a],
            )
            .unwrap_or(l);
        self.check_status(status);
    }

    pub fn block(&mut self, body: &[Stmt]) -> R<()> {
        for s in body {
            self.stmt(s)?;
        }
        Ok(())
    }

    fn stmt(&mut self, s: &Stmt) -> R<()> {
        match s {
            Stmt::Let(i, e) if native_type(&e.ty) => {
                self.counts.native += 1;
                let v = self.expr(e)?;
                self.set_local(*i, v, &e.ty);
            }
            Stmt::Assign { value, place, .. } if native_type(&value.ty) => {
                self.counts.helper += 1 + place_nodes(place);
                let v = self.expr(value)?;
                let a = self.spill(v);
                let id = self.tables.stmts.len() as i64;
                self.tables.stmts.push(s.clone());
                let (ctx, idv) = (self.ctx, self.iconst(id));
                let status = self
                    .call(
                        "h_assign",
                        h_assign as *const u8,
                        &[I64; 3],
                        Some(I64),
                        &[ctx, idv, a],
                    )
                    .unwrap_or(idv);
                self.check_status(status);
            }
            Stmt::If {
                cond,
                then,
                otherwise,
            } if native_type(&cond.ty) => {
                self.counts.native += 1;
                let c = self.truth(cond)?;
                let (tb, eb, join) = (
                    self.b.create_block(),
                    self.b.create_block(),
                    self.b.create_block(),
                );
                self.b.ins().brif(c, tb, &[], eb, &[]);
                self.b.switch_to_block(tb);
                self.block(then)?;
                self.b.ins().jump(join, &[]);
                self.b.switch_to_block(eb);
                self.block(otherwise)?;
                self.b.ins().jump(join, &[]);
                self.b.switch_to_block(join);
            }
            Stmt::IfLet {
                local,
                value,
                then,
                otherwise,
            } if native_type(&value.ty) => {
                self.counts.native += 1;
                let v = self.expr(value)?;
                let (tb, eb, join) = (
                    self.b.create_block(),
                    self.b.create_block(),
                    self.b.create_block(),
                );
                self.b.ins().brif(v.tag, tb, &[], eb, &[]);
                self.b.switch_to_block(tb);
                self.set_local(*local, v, &value.ty);
                self.block(then)?;
                self.b.ins().jump(join, &[]);
                self.b.switch_to_block(eb);
                self.block(otherwise)?;
                self.b.ins().jump(join, &[]);
                self.b.switch_to_block(join);
            }
            Stmt::ForRange {
                local,
                from,
                to,
                body,
            } => {
                self.counts.native += 1;
                let i = self.b.declare_var(I64);
                let start = self.iconst(*from);
                self.b.def_var(i, start);
                let (head, inner, exit) = (
                    self.b.create_block(),
                    self.b.create_block(),
                    self.b.create_block(),
                );
                self.b.ins().jump(head, &[]);
                self.b.switch_to_block(head);
                let iv = self.b.use_var(i);
                let more = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, iv, *to);
                self.b.ins().brif(more, inner, &[], exit, &[]);
                self.b.switch_to_block(inner);
                let iv = self.b.use_var(i);
                let v = self.present(iv);
                self.set_local(*local, v, &Type::Int);
                self.block(body)?;
                let iv = self.b.use_var(i);
                let next = self.b.ins().iadd_imm_s(iv, 1);
                self.b.def_var(i, next);
                self.b.ins().jump(head, &[]);
                self.b.switch_to_block(exit);
            }
            Stmt::Emit { fields, .. } if fields.iter().all(|(_, e)| native_type(&e.ty)) => {
                let exprs: Vec<&Expr> = fields.iter().map(|(_, e)| e).collect();
                self.effect(s, &exprs)?;
            }
            Stmt::Trigger { args, .. } if args.iter().all(|(_, e)| native_type(&e.ty)) => {
                let exprs: Vec<&Expr> = args.iter().map(|(_, e)| e).collect();
                self.effect(s, &exprs)?;
            }
            Stmt::Return(e) => {
                self.counts.native += 1;
                self.discard(e)?;
                let ret = self.ret.unwrap_or(self.fail);
                self.b.ins().jump(ret, &[]);
                // Code after a `return` is unreachable but must be well formed.
                let dead = self.b.create_block();
                self.b.switch_to_block(dead);
            }
            Stmt::Expr(e) => {
                self.counts.native += 1;
                self.discard(e)?;
            }
            _ => self.stmt_fallback(s)?,
        }
        Ok(())
    }

    fn effect(&mut self, s: &Stmt, exprs: &[&Expr]) -> R<()> {
        self.counts.helper += 1;
        let n = exprs.len().max(1);
        let ss = self.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            (n * SLOT_BYTES) as u32,
            3,
        ));
        for (j, e) in exprs.iter().enumerate() {
            let v = self.expr(e)?;
            let base = self.b.ins().stack_addr(I64, ss, 0);
            self.store_slot(v, base, (j * SLOT_BYTES) as i32);
        }
        let id = self.tables.stmts.len() as i64;
        self.tables.stmts.push(s.clone());
        let base = self.b.ins().stack_addr(I64, ss, 0);
        let (ctx, idv) = (self.ctx, self.iconst(id));
        let status = self
            .call(
                "h_effect",
                h_effect as *const u8,
                &[I64; 3],
                Some(I64),
                &[ctx, idv, base],
            )
            .unwrap_or(idv);
        self.check_status(status);
        Ok(())
    }
}

/// The type a slot read back from a helper has: present or not.
fn opt_of(t: &Type) -> Type {
    match t {
        Type::Opt(_) | Type::None => t.clone(),
        other => Type::Opt(Box::new(other.clone())),
    }
}
