{#-
  Turns a Stripe amount in the currency's minor unit into major units, as numeric
  (docs/marts.md, "Money"): whole units for Stripe's zero-decimal currencies
  (bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf), thousandths for
  its three-decimal currencies (bhd jod kwd omr tnd), hundredths otherwise. Currency
  codes match in any case. Exact decimal arithmetic, not rounded: the caller rounds
  with round(x, 2). Null amount gives null.

  amount, currency: SQL expressions, e.g. {{ stripe_amount_to_major('c.amount', 'c.currency') }}
-#}
{%- macro stripe_amount_to_major(amount, currency) -%}
(case
    when lower({{ currency }}) in ('bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga',
                                   'pyg', 'rwf', 'ugx', 'vnd', 'vuv', 'xaf', 'xof', 'xpf')
        then ({{ amount }})::numeric
    when lower({{ currency }}) in ('bhd', 'jod', 'kwd', 'omr', 'tnd')
        then ({{ amount }})::numeric / 1000
    else ({{ amount }})::numeric / 100
end)
{%- endmacro -%}
