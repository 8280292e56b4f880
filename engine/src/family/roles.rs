//! Tensor roles: what each weight of a decoder-only model does, and the
//! table that names the tensor playing each role in a file.
//!
//! Every family names its tensors the same way unless its spec says
//! otherwise: the default names of both formats are one table,
//! `engine/specs/tensors.yaml`, and a spec's `tensors:` (GGUF) and
//! `hf.tensors:` (Hugging Face) list only the roles it names differently.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// What a weight tensor does. In YAML a role is its snake-case name
/// (`attn_norm`, `q_bias`, ...), the key of a tensor table.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TensorRole {
    /// Token embeddings, `[vocab, hidden]`.
    Embed,
    /// The output projection (LM head), `[vocab, hidden]`; absent in a GGUF
    /// file when tied to the embeddings.
    Output,
    /// The norm before the output projection, `[hidden]`.
    FinalNorm,
    /// Per layer: the norm before attention, `[hidden]`.
    AttnNorm,
    /// Per layer: the query projection, `[n_heads·head_dim, hidden]`.
    Q,
    /// Per layer: the key projection, `[n_kv_heads·head_dim, hidden]`.
    K,
    /// Per layer: the value projection, `[n_kv_heads·head_dim, hidden]`.
    V,
    /// Per layer: q, k and v as one matrix (q rows, then k, then v), read
    /// when the file has no `q`.
    Qkv,
    /// Per layer: the attention output projection, `[hidden, n_heads·head_dim]`.
    O,
    /// Per layer: biases of q, k and v, read when present.
    QBias,
    KBias,
    VBias,
    /// Per layer: per-head RMSNorm weights of q and k, `[head_dim]`.
    QNorm,
    KNorm,
    /// Per layer: the norm of attention's output before the residual add
    /// (read with `post_norms`).
    PostAttnNorm,
    /// Per layer: the norm before the MLP, `[hidden]`.
    FfnNorm,
    /// Per layer: the MLP's gate, `[ffn, hidden]` (not read with `fused_gate_up`).
    Gate,
    /// Per layer: the MLP's up projection, `[ffn, hidden]`; gate rows then up
    /// rows, `[2·ffn, hidden]`, with `fused_gate_up`.
    Up,
    /// Per layer: the MLP's down projection, `[hidden, ffn]`.
    Down,
    /// Per layer: the norm of the MLP's output before the residual add
    /// (read with `post_norms`).
    PostFfnNorm,
}

impl TensorRole {
    /// Every role, in the order tensor tables list them.
    pub const ALL: [TensorRole; 20] = [
        TensorRole::Embed,
        TensorRole::Output,
        TensorRole::FinalNorm,
        TensorRole::AttnNorm,
        TensorRole::Q,
        TensorRole::K,
        TensorRole::V,
        TensorRole::Qkv,
        TensorRole::O,
        TensorRole::QBias,
        TensorRole::KBias,
        TensorRole::VBias,
        TensorRole::QNorm,
        TensorRole::KNorm,
        TensorRole::PostAttnNorm,
        TensorRole::FfnNorm,
        TensorRole::Gate,
        TensorRole::Up,
        TensorRole::Down,
        TensorRole::PostFfnNorm,
    ];

    /// The role's key in a tensor table (`q_bias`).
    pub fn key(self) -> &'static str {
        match self {
            TensorRole::Embed => "embed",
            TensorRole::Output => "output",
            TensorRole::FinalNorm => "final_norm",
            TensorRole::AttnNorm => "attn_norm",
            TensorRole::Q => "q",
            TensorRole::K => "k",
            TensorRole::V => "v",
            TensorRole::Qkv => "qkv",
            TensorRole::O => "o",
            TensorRole::QBias => "q_bias",
            TensorRole::KBias => "k_bias",
            TensorRole::VBias => "v_bias",
            TensorRole::QNorm => "q_norm",
            TensorRole::KNorm => "k_norm",
            TensorRole::PostAttnNorm => "post_attn_norm",
            TensorRole::FfnNorm => "ffn_norm",
            TensorRole::Gate => "gate",
            TensorRole::Up => "up",
            TensorRole::Down => "down",
            TensorRole::PostFfnNorm => "post_ffn_norm",
        }
    }

    /// The role whose key is `key`.
    pub fn from_key(key: &str) -> Option<TensorRole> {
        TensorRole::ALL.into_iter().find(|r| r.key() == key)
    }

    /// Whether each layer has its own tensor of this role (its name has `{i}`).
    pub fn per_layer(self) -> bool {
        !matches!(
            self,
            TensorRole::Embed | TensorRole::Output | TensorRole::FinalNorm
        )
    }

    /// Whether the role is a norm weight (a 1-D tensor the norm offset applies to).
    pub fn is_norm(self) -> bool {
        self.key().ends_with("norm")
    }

    /// Whether the role is a bias (named `*.bias` in files).
    pub fn is_bias(self) -> bool {
        self.key().ends_with("_bias")
    }
}

impl std::fmt::Display for TensorRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// The tensor name of every role in one format's files; `{i}` is the layer.
///
/// A table always names every role: it starts from the format's defaults
/// (`engine/specs/tensors.yaml`) and a spec overrides some of them. In YAML
/// it is a mapping from role to name listing the overrides; an unknown role
/// is an error naming it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorNames {
    names: [String; TensorRole::ALL.len()],
}

/// A file format whose tensor names a table gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorFormat {
    Gguf,
    Hf,
}

/// The default tables as `engine/specs/tensors.yaml` writes them.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultTables {
    schema: u32,
    gguf: BTreeMap<TensorRole, String>,
    hf: BTreeMap<TensorRole, String>,
}

/// The schema version of `engine/specs/tensors.yaml`.
pub const TABLES_SCHEMA: u32 = 1;

/// The text of the default tables, embedded.
pub const DEFAULT_TENSORS_FILE: &str = include_str!("../../specs/tensors.yaml");

/// Parses a default-tables file: both formats must name every role.
pub fn parse_default_tables(text: &str) -> Result<(TensorNames, TensorNames), String> {
    let t: DefaultTables = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    if t.schema != TABLES_SCHEMA {
        return Err(format!(
            "schema {} is not supported (this engine reads schema {TABLES_SCHEMA})",
            t.schema
        ));
    }
    let full = |at: &str, m: BTreeMap<TensorRole, String>| -> Result<TensorNames, String> {
        let missing: Vec<&str> = TensorRole::ALL
            .iter()
            .filter(|r| !m.contains_key(r))
            .map(|r| r.key())
            .collect();
        if !missing.is_empty() {
            return Err(format!("{at}: no default name for {}", missing.join(", ")));
        }
        Ok(TensorNames {
            names: TensorRole::ALL.map(|r| m[&r].clone()),
        })
    };
    Ok((full("gguf", t.gguf)?, full("hf", t.hf)?))
}

fn defaults() -> &'static (TensorNames, TensorNames) {
    static DEFAULTS: OnceLock<(TensorNames, TensorNames)> = OnceLock::new();
    DEFAULTS.get_or_init(|| {
        parse_default_tables(DEFAULT_TENSORS_FILE)
            .unwrap_or_else(|e| panic!("built-in engine/specs/tensors.yaml: {e}"))
    })
}

impl TensorNames {
    /// The default names of a format.
    pub fn defaults(format: TensorFormat) -> TensorNames {
        match format {
            TensorFormat::Gguf => defaults().0.clone(),
            TensorFormat::Hf => defaults().1.clone(),
        }
    }

    /// The defaults of `format` with `overrides` in place of theirs.
    pub fn with_overrides(
        format: TensorFormat,
        overrides: impl IntoIterator<Item = (TensorRole, String)>,
    ) -> TensorNames {
        let mut t = TensorNames::defaults(format);
        for (role, name) in overrides {
            t.set(role, name);
        }
        t
    }

    /// The name template of a role (with `{i}` for per-layer roles).
    pub fn get(&self, role: TensorRole) -> &str {
        &self.names[role as usize]
    }

    /// The name of a role's tensor in layer `layer`.
    pub fn layer(&self, role: TensorRole, layer: usize) -> String {
        self.get(role).replace("{i}", &layer.to_string())
    }

    pub fn set(&mut self, role: TensorRole, name: String) {
        self.names[role as usize] = name;
    }

    /// Every `(role, template)` pair, in [`TensorRole::ALL`] order.
    pub fn entries(&self) -> impl Iterator<Item = (TensorRole, &str)> {
        TensorRole::ALL.into_iter().map(|r| (r, self.get(r)))
    }

    /// The roles whose name differs from the format's default.
    pub fn overrides(&self, format: TensorFormat) -> Vec<(TensorRole, &str)> {
        let d = TensorNames::defaults(format);
        self.entries().filter(|(r, n)| d.get(*r) != *n).collect()
    }
}

impl serde::Serialize for TensorNames {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.names.len()))?;
        for (role, name) in self.entries() {
            m.serialize_entry(&role, name)?;
        }
        m.end()
    }
}

fn overrides<'de, D: serde::Deserializer<'de>>(
    d: D,
    format: TensorFormat,
) -> Result<TensorNames, D::Error> {
    use serde::Deserialize;
    let m: Option<BTreeMap<TensorRole, String>> = Option::deserialize(d)?;
    Ok(TensorNames::with_overrides(format, m.unwrap_or_default()))
}

/// serde: a GGUF table given as overrides of the defaults.
pub(crate) fn gguf_overrides<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<TensorNames, D::Error> {
    overrides(d, TensorFormat::Gguf)
}

/// serde: a Hugging Face table given as overrides of the defaults.
pub(crate) fn hf_overrides<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<TensorNames, D::Error> {
    overrides(d, TensorFormat::Hf)
}

pub(crate) fn gguf_defaults() -> TensorNames {
    TensorNames::defaults(TensorFormat::Gguf)
}

pub(crate) fn hf_defaults() -> TensorNames {
    TensorNames::defaults(TensorFormat::Hf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_match_serde() {
        for r in TensorRole::ALL {
            assert_eq!(TensorRole::from_key(r.key()), Some(r));
            let yaml = serde_norway::to_string(&r).unwrap();
            assert_eq!(yaml.trim(), r.key());
        }
        assert_eq!(TensorRole::from_key("kbias"), None);
        // ALL lists the variants in declaration order (the table's index).
        for (i, r) in TensorRole::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }

    #[test]
    fn the_embedded_defaults_name_every_role() {
        let (g, h) = parse_default_tables(DEFAULT_TENSORS_FILE).unwrap();
        assert_eq!(g.get(TensorRole::Down), "blk.{i}.ffn_down.weight");
        assert_eq!(
            h.layer(TensorRole::Down, 3),
            "model.layers.3.mlp.down_proj.weight"
        );
        for (r, n) in g.entries().chain(h.entries()) {
            assert_eq!(n.contains("{i}"), r.per_layer(), "{r}: {n}");
        }
    }

    #[test]
    fn a_default_table_missing_a_role_or_naming_an_unknown_one_is_refused() {
        let e = parse_default_tables("schema: 1\ngguf: {embed: a}\nhf: {}\n").unwrap_err();
        assert!(e.contains("gguf: no default name for output"), "{e}");
        let text = DEFAULT_TENSORS_FILE.replacen("  down:", "  dwn:", 1);
        let e = parse_default_tables(&text).unwrap_err();
        assert!(e.contains("unknown variant `dwn`"), "{e}");
    }
}
