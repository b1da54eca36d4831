//! Unit tests of the verifier: hand-built programs, and the ways an IR can
//! be tampered with, each rejected.

use crate::*;

fn int(v: i64) -> Expr {
    Expr {
        ty: Type::Int,
        kind: ExprKind::Const(Const::Int(v)),
    }
}

fn program() -> Program {
    Program {
        name: "t".into(),
        events: vec![EventLayout {
            name: "E".into(),
            wire: "E".into(),
            fields: vec![Field {
                name: "n".into(),
                key: "n".into(),
                ty: Type::Int,
                sensitivity: None,
            }],
            derived: false,
        }],
        processors: vec![Processor {
            name: "p".into(),
            vars: vec![VarDef {
                name: "total".into(),
                ty: Type::Int,
                init: Some(int(0)),
                max_entries: None,
            }],
            handlers: vec![Handler {
                event: 0,
                guard: None,
                n_locals: 1,
                body: vec![
                    Stmt::Let(
                        0,
                        Expr {
                            ty: Type::Int,
                            kind: ExprKind::Field(0),
                        },
                    ),
                    Stmt::ForRange {
                        local: 0,
                        from: 0,
                        to: 10,
                        body: vec![Stmt::Assign {
                            place: Place::Var(0),
                            op: AssignOp::Add,
                            value: Expr {
                                ty: Type::Int,
                                kind: ExprKind::Local(0),
                            },
                        }],
                    },
                    Stmt::Trigger {
                        action: "cpu_sample".into(),
                        args: vec![(
                            "for".into(),
                            Expr {
                                ty: Type::Duration,
                                kind: ExprKind::Const(Const::Duration(1)),
                            },
                        )],
                        budget: Budget {
                            count: 1,
                            per_ns: 1,
                            declared: true,
                        },
                        site: 1,
                    },
                ],
            }],
        }],
        ..Program::default()
    }
}

fn rejects(mutate: impl FnOnce(&mut Program), what: &str) {
    let mut p = program();
    mutate(&mut p);
    let errors = verify(&p).expect_err("tampered program accepted");
    assert!(
        errors.iter().any(|e| e.message.contains(what)),
        "{errors:?} should mention {what:?}"
    );
}

fn body(p: &mut Program) -> &mut Vec<Stmt> {
    &mut p.processors[0].handlers[0].body
}

#[test]
fn a_well_formed_program_verifies() {
    assert_eq!(verify(&program()), Ok(()));
    assert!(print(&program()).contains("trigger cpu_sample(for: 1ns) limit 1 per 1ns #1"));
}

#[test]
fn tampering_is_rejected() {
    rejects(
        |p| p.processors[0].handlers[0].event = 7,
        "event 7 does not exist",
    );
    rejects(
        |p| body(p)[0] = Stmt::Let(5, int(1)),
        "local 5 out of range",
    );
    rejects(
        |p| {
            body(p)[0] = Stmt::Let(
                0,
                Expr {
                    ty: Type::Int,
                    kind: ExprKind::Field(3),
                },
            )
        },
        "slot 3 out of range",
    );
    rejects(
        |p| {
            body(p)[0] = Stmt::Let(
                0,
                Expr {
                    ty: Type::Str,
                    kind: ExprKind::Field(0),
                },
            )
        },
        "typed string",
    );
    rejects(
        |p| {
            if let Stmt::ForRange { to, .. } = &mut body(p)[1] {
                *to = i64::MAX;
            }
        },
        "a loop of",
    );
    rejects(
        |p| {
            if let Stmt::Trigger { action, .. } = &mut body(p)[2] {
                *action = "restart_service".into();
            }
        },
        "not an action of the catalog",
    );
    rejects(
        |p| {
            if let Stmt::Trigger { budget, .. } = &mut body(p)[2] {
                budget.count = 0;
            }
        },
        "positive count",
    );
    rejects(
        |p| {
            p.processors[0].vars.push(VarDef {
                name: "m".into(),
                ty: Type::Map(Box::new(Type::Str), Box::new(Type::Int)),
                init: None,
                max_entries: None,
            })
        },
        "has no maximum",
    );
    rejects(
        |p| {
            body(p)[0] = Stmt::Let(
                0,
                Expr {
                    ty: Type::Int,
                    kind: ExprKind::Binary(
                        BinOp::Add,
                        Box::new(int(1)),
                        Box::new(Expr {
                            ty: Type::Float,
                            kind: ExprKind::Const(Const::Float(1.0)),
                        }),
                    ),
                },
            )
        },
        "Add on int and float",
    );
    rejects(
        |p| {
            p.functions.push(Function {
                name: "f".into(),
                params: vec![],
                ret: Type::Int,
                n_locals: 0,
                body: vec![Stmt::Return(Expr {
                    ty: Type::Int,
                    kind: ExprKind::CallFn(0, vec![]),
                })],
            });
        },
        "cycle",
    );
    rejects(
        |p| {
            p.functions.push(Function {
                name: "f".into(),
                params: vec![],
                ret: Type::Int,
                n_locals: 0,
                body: vec![
                    Stmt::Emit {
                        event: 0,
                        fields: vec![],
                        budget: Budget {
                            count: 1,
                            per_ns: 1,
                            declared: true,
                        },
                        site: 2,
                    },
                    Stmt::Return(int(1)),
                ],
            });
        },
        "pure function",
    );
}
