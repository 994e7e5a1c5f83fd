//! dbt's `modules` in templates (`modules.datetime`, `modules.pytz`, `modules.re`,
//! `modules.itertools`): what they refuse. Each misuse is a one-line error naming
//! the template's file and line, never an undefined value rendered silently. The
//! differential test (`tests/dbt`, fixture `modules`) checks what they answer
//! against dbt-core itself.

use crate::common::*;

fn model_fails(db: &TestDb, sql: &str, code: i32, expected: &[&str]) {
    let dir = project(&[
        (
            "dbt_project.yml",
            "name: mods\nprofile: mods\nmodels:\n  mods:\n    +materialized: view\n",
        ),
        ("models/ok.sql", "select 1 as one"),
        ("models/m.sql", sql),
    ]);
    let pd = dir.path().to_str().unwrap();
    let out = db.cli(&["run", "--project-dir", pd]);
    assert_code(&out, code);
    let err = stderr(&out);
    for e in expected {
        assert!(err.contains(e), "{sql}: expected {e:?} in\n{err}");
    }
}

#[test]
fn misuses_are_errors_with_their_file_and_line() {
    let db = TestDb::new("modules_errors");
    let cases: &[(&str, &[&str])] = &[
        (
            "select 1 as x,\n'{{ modules.pytz.timezone('Mars/Olympus') }}' as tz",
            &[
                "models/m.sql line 2",
                "UnknownTimeZoneError: 'Mars/Olympus'",
            ],
        ),
        (
            "select '{{ modules.datetime.datetime(2026, 13, 1) }}' as d",
            &["models/m.sql line 1", "ValueError: month must be in 1..12"],
        ),
        (
            "select '{{ modules.datetime.datetime(2026, 1) }}' as d",
            &["models/m.sql line 1", "missing required argument 'day'"],
        ),
        (
            "select '{{ modules.datetime.date(2026, 1, 1).nosuch() }}' as d",
            &["models/m.sql line 1", "datetime.date has no method nosuch"],
        ),
        (
            "select '{{ modules.datetime.datetime.strptime('2026', '%d') }}' as d",
            &["ValueError: time data '2026' does not match format '%d'"],
        ),
        (
            "select '{{ modules.re.purge() }}' as r",
            &[
                "models/m.sql line 1",
                "modules.re.purge is not supported yet",
            ],
        ),
        (
            "select '{{ modules.re.match('(', 'x') }}' as r",
            &[
                "models/m.sql line 1",
                "re.error: pattern '(' cannot be compiled",
            ],
        ),
        (
            "select '{{ modules.re.sub('a', 'b', 'abc', nope=1) }}' as r",
            &["sub() got an unexpected keyword argument 'nope'"],
        ),
        (
            "select '{{ modules.itertools.cycle([1]) }}' as r",
            &["modules.itertools.cycle (an endless iterator) is not supported yet"],
        ),
        (
            "select '{{ modules.pytz.utc.localize(run_started_at) }}' as r",
            &["ValueError: Not naive datetime (tzinfo is already set)"],
        ),
    ];
    for (sql, expected) in cases {
        model_fails(&db, sql, 2, expected);
    }
}

#[test]
fn python_operators_refuse_what_python_refuses() {
    // `+`, `-`, `*` between datetime values and sets follow Python (the
    // differential fixture `modules` checks the results against dbt); what Python
    // refuses is its error, named with the file and the line, and operators on
    // numbers and strings keep minijinja's own errors.
    let db = TestDb::new("modules_operators");
    let cases: &[(&str, &[&str])] = &[
        (
            "select 1 as x,\n'{{ modules.datetime.date(2024, 1, 1) - 1 }}' as d",
            &[
                "models/m.sql line 2",
                "TypeError: unsupported operand type(s) for -: 'datetime.date' and 'int'",
            ],
        ),
        (
            "select '{{ modules.datetime.timedelta(1) - modules.datetime.date(2024, 1, 1) }}' as d",
            &["unsupported operand type(s) for -: 'datetime.timedelta' and 'datetime.date'"],
        ),
        (
            "select '{{ modules.datetime.datetime(2024, 1, 1) - modules.datetime.date(2024, 1, 1) }}' as d",
            &["unsupported operand type(s) for -: 'datetime.datetime' and 'datetime.date'"],
        ),
        (
            "select '{{ modules.datetime.time(1, 2) + modules.datetime.timedelta(1) }}' as d",
            &["unsupported operand type(s) for +: 'datetime.time' and 'datetime.timedelta'"],
        ),
        (
            "select '{{ -modules.datetime.date(2024, 1, 1) }}' as d",
            &["TypeError: bad operand type for unary -: 'datetime.date'"],
        ),
        (
            "{% set naive = modules.datetime.datetime(2024, 1, 1) %}\nselect\n'{{ naive - modules.pytz.utc.localize(naive) }}' as d",
            &[
                "models/m.sql line 3",
                "TypeError: can't subtract offset-naive and offset-aware datetimes",
            ],
        ),
        (
            "select '{{ modules.datetime.date(9999, 12, 31) + modules.datetime.timedelta(days=1) }}' as d",
            &["OverflowError: result out of range"],
        ),
        (
            "select '{{ modules.datetime.datetime(1, 1, 1) - modules.datetime.timedelta(microseconds=1) }}' as d",
            &["OverflowError: date value out of range"],
        ),
        (
            "select '{{ set([1]) + set([2]) }}' as s",
            &["unsupported operand type(s) for +: 'set' and 'set'"],
        ),
        (
            "select '{{ set([1]) - [1] }}' as s",
            &["unsupported operand type(s) for -: 'set' and 'list'"],
        ),
        (
            "{% set s = 'a' %}\nselect {{ 1 - 1 }},\n\n  {{ s\n  - 1 }} as x",
            // minijinja's own error and line (the operand's), as before the rewrite
            &[
                "models/m.sql line 5",
                "tried to use - operator on unsupported types string and number",
            ],
        ),
        (
            // a rewritten operator on line 1 leaves the lines after it in place
            "{% set n = 2 - modules.datetime.timedelta(1).days %}select {{ n * 2 }} as x,\n\n'{{ modules.datetime.datetime(2026, 13, 1) }}' as d",
            &["models/m.sql line 3", "ValueError: month must be in 1..12"],
        ),
    ];
    for (sql, expected) in cases {
        model_fails(&db, sql, 2, expected);
    }
}

#[test]
fn a_missing_python_name_is_undefined_as_in_dbt() {
    // Jinja in dbt gives an undefined value for a name a module does not have
    // (dbt_date tests `value.hour is defined` to tell a date from a datetime);
    // using it as a function is an error.
    let db = TestDb::new("modules_undefined");
    model_fails(
        &db,
        "select '{{ modules.datetime.nosuch(1) }}' as r",
        2,
        &["models/m.sql line 1"],
    );
}
