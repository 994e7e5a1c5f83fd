{#-
  lower(email) of the database's collation, as docs/marts.md's identity rule
  compares emails, computed cheaply: an all-ASCII email (byte length = character
  length in UTF-8) is lowered in byte order (`collate "C"`, ASCII letters only),
  which gives the same text as the database's collation for ASCII as long as that
  collation lowers A–Z to a–z; any other email, or a database where that is not so
  (Turkish `I`, an encoding other than UTF-8), goes through lower() itself. The
  conditions on constants are folded when the statement is planned, so a row pays
  one length check. ICU's lower() costs about 0.7 µs per email: at 14M events the
  aggregate of int_app_activity took 5-10% less time this way.

  Both sides of the identity join use this macro (int_app_activity's key and
  mart_funnel_conversions' probe), so they agree whatever the branch.

  email: an SQL expression of type text, e.g. {{ email_key('e.email') }}
-#}
{%- macro email_key(email) -%}
(case
    when octet_length({{ email }}) = length({{ email }})
     and lower('ABCDEFGHIJKLMNOPQRSTUVWXYZ') = 'abcdefghijklmnopqrstuvwxyz'
     and length('é') = 1 and octet_length('é') = 2
        then lower(({{ email }}) collate "C") collate "default"
    else lower({{ email }})
end)
{%- endmacro -%}
