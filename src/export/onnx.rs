//! The folded network as an ONNX model (opset 17, dynamic batch, height and width), for
//! ONNX Runtime, TensorRT and other inference engines.
//!
//! The graph is the inference form with the dead high-frequency branch left out: SpaceToDepth
//! (the head's input channels permuted to match PyTorch's PixelUnshuffle order), the head conv,
//! per block LayerNorm -> conv -> activation, the tail, the upsampling conv and DepthToSpace in
//! CRD mode (PyTorch's PixelShuffle). LayerNorm over channels and the exact (erf) GELU are
//! spelled out in basic operators, as opset 17 has neither in NCHW form.

use super::proto::*;
use crate::model::{Activation, Form, ModelConfig};
use crate::{HostTensor, ModelWeights, TensorMap};
use prost::Message;

pub const OPSET: i64 = 17;
/// The IR version that goes with opset 17.
const IR_VERSION: i64 = 8;
pub const INPUT_NAME: &str = "lr";
pub const OUTPUT_NAME: &str = "sr";

/// A model the exporter does not cover, or weights that do not fold.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("ONNX export covers models with the HF merge off (the official configuration)")]
    MergeHf,
    #[error("ONNX export does not cover channel attention (eca = true)")]
    Eca,
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
}

/// Builds the ONNX model of these weights (folded first when in training form).
pub fn export(weights: &ModelWeights) -> Result<Vec<u8>, ExportError> {
    let config = &weights.config;
    if config.merge_hf {
        return Err(ExportError::MergeHf);
    }
    if config.eca {
        return Err(ExportError::Eca);
    }
    let folded = weights.folded(false)?;
    debug_assert_eq!(folded.form, Form::Folded);
    let graph = build_graph(config, &folded.tensors);
    let model = ModelProto {
        ir_version: IR_VERSION,
        producer_name: "rt4ksr".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!(
            "RT4KSR x{} (folded). Input {INPUT_NAME}: float32 [N, 3, H, W], RGB in 0..1, H and W even. \
             Output {OUTPUT_NAME}: [N, 3, {s}H, {s}W], not clamped.",
            config.scale,
            s = config.scale
        ),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        metadata_props: vec![
            StringStringEntryProto {
                key: "rt4ksr.config".into(),
                value: serde_json::to_string(config).expect("config serializes"),
            },
            StringStringEntryProto {
                key: "rt4ksr.provenance".into(),
                value: weights.provenance.clone(),
            },
        ],
    };
    Ok(model.encode_to_vec())
}

/// Nodes and initializers under construction; every value gets a fresh name.
struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

impl GraphBuilder {
    fn node(&mut self, op: &str, inputs: &[&str], attributes: Vec<AttributeProto>) -> String {
        let name = format!("{}_{}", op.to_lowercase(), self.nodes.len());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![name.clone()],
            name: name.clone(),
            op_type: op.into(),
            attribute: attributes,
        });
        name
    }

    fn constant(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), values.len());
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DATA_FLOAT,
            name: name.into(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name.into()
    }

    fn scalar(&mut self, name: &str, value: f32) -> String {
        if !self.initializers.iter().any(|t| t.name == name) {
            self.constant(name, &[], &[value]);
        }
        name.into()
    }

    fn conv(&mut self, x: &str, t: &TensorMap, prefix: &str) -> String {
        let w = &t[&format!("{prefix}.weight")];
        self.conv_with(x, prefix, w, &t[&format!("{prefix}.bias")])
    }

    fn conv_with(&mut self, x: &str, prefix: &str, weight: &HostTensor, bias: &HostTensor) -> String {
        let w = self.constant(&format!("{prefix}.weight"), &weight.shape, &weight.data);
        let b = self.constant(&format!("{prefix}.bias"), &bias.shape, &bias.data);
        self.node(
            "Conv",
            &[x, &w, &b],
            vec![ints("kernel_shape", &[3, 3]), ints("pads", &[1, 1, 1, 1])],
        )
    }

    /// LayerNorm over the channel axis, as the network computes it (biased variance).
    fn layer_norm(&mut self, x: &str, t: &TensorMap, prefix: &str) -> String {
        let channels = t[&format!("{prefix}.weight")].data.len();
        let weight = self.constant(
            &format!("{prefix}.weight"),
            &[1, channels, 1, 1],
            &t[&format!("{prefix}.weight")].data,
        );
        let bias = self.constant(
            &format!("{prefix}.bias"),
            &[1, channels, 1, 1],
            &t[&format!("{prefix}.bias")].data,
        );
        let eps = self.scalar("layernorm_eps", crate::model::network::LAYERNORM_EPS as f32);
        let mean = self.node("ReduceMean", &[x], vec![ints("axes", &[1])]);
        let centred = self.node("Sub", &[x, &mean], vec![]);
        let squared = self.node("Mul", &[&centred, &centred], vec![]);
        let var = self.node("ReduceMean", &[&squared], vec![ints("axes", &[1])]);
        let var_eps = self.node("Add", &[&var, &eps], vec![]);
        let std = self.node("Sqrt", &[&var_eps], vec![]);
        let normed = self.node("Div", &[&centred, &std], vec![]);
        let scaled = self.node("Mul", &[&normed, &weight], vec![]);
        self.node("Add", &[&scaled, &bias], vec![])
    }

    fn activation(&mut self, x: &str, activation: Activation) -> String {
        match activation {
            // 0.5 x (1 + erf(x / sqrt 2)), the exact GELU the network uses.
            Activation::Gelu => {
                let sqrt2 = self.scalar("sqrt_2", std::f32::consts::SQRT_2);
                let one = self.scalar("one", 1.0);
                let half = self.scalar("half", 0.5);
                let scaled = self.node("Div", &[x, &sqrt2], vec![]);
                let erf = self.node("Erf", &[&scaled], vec![]);
                let shifted = self.node("Add", &[&erf, &one], vec![]);
                let gated = self.node("Mul", &[x, &shifted], vec![]);
                self.node("Mul", &[&gated, &half], vec![])
            }
            Activation::Relu => self.node("Relu", &[x], vec![]),
            Activation::Lrelu => self.node(
                "LeakyRelu",
                &[x],
                vec![float("alpha", crate::model::network::LRELU_SLOPE as f32)],
            ),
        }
    }
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: values.to_vec(),
        r#type: ATTRIBUTE_INTS,
        ..Default::default()
    }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: value,
        r#type: ATTRIBUTE_INT,
        ..Default::default()
    }
}

fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f: value,
        r#type: ATTRIBUTE_FLOAT,
        ..Default::default()
    }
}

fn string(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        s: value.as_bytes().to_vec(),
        r#type: ATTRIBUTE_STRING,
        ..Default::default()
    }
}

/// The head's weights with input channels reordered from PixelUnshuffle's `c * 4 + dy * 2 + dx`
/// to SpaceToDepth's `(dy * 2 + dx) * 3 + c`.
fn head_for_space_to_depth(weight: &HostTensor) -> HostTensor {
    let (co, ci) = (weight.shape[0], weight.shape[1]);
    let colors = ci / 4;
    let mut data = vec![0f32; weight.data.len()];
    for o in 0..co {
        for c in 0..colors {
            for offset in 0..4 {
                let from = (o * ci + c * 4 + offset) * 9;
                let to = (o * ci + offset * colors + c) * 9;
                data[to..to + 9].copy_from_slice(&weight.data[from..from + 9]);
            }
        }
    }
    HostTensor::new(weight.shape.clone(), data)
}

fn tensor_info(name: &str, dims: [Dimension; 4]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: DATA_FLOAT,
                shape: Some(TensorShapeProto { dim: dims.to_vec() }),
            }),
        }),
    }
}

fn fixed(size: i64) -> Dimension {
    Dimension {
        dim_value: Some(size),
        dim_param: None,
    }
}

fn named(name: &str) -> Dimension {
    Dimension {
        dim_value: None,
        dim_param: Some(name.into()),
    }
}

fn build_graph(config: &ModelConfig, t: &TensorMap) -> GraphProto {
    let mut g = GraphBuilder {
        nodes: vec![],
        initializers: vec![],
    };
    let unshuffled = g.node("SpaceToDepth", &[INPUT_NAME], vec![int("blocksize", 2)]);
    let head_weight = head_for_space_to_depth(&t["head.0.weight"]);
    let mut x = g.conv_with(&unshuffled, "head.0", &head_weight, &t["head.0.bias"]);
    for i in 0..config.num_blocks {
        let input = x.clone();
        if config.layernorm {
            x = g.layer_norm(&x, t, &format!("body.{i}.norm"));
        }
        x = g.conv(&x, t, &format!("body.{i}.conv1.rep_conv"));
        x = g.activation(&x, config.activation);
        if config.residual {
            x = g.node("Add", &[&x, &input], vec![]);
        }
    }
    x = g.layer_norm(&x, t, "tail.0");
    x = g.conv(&x, t, "tail.1.rep_conv");
    x = g.conv(&x, t, "upsample.0");
    g.node(
        "DepthToSpace",
        &[&x],
        vec![int("blocksize", 2 * config.scale as i64), string("mode", "CRD")],
    );
    // The last node's output is the graph's.
    g.nodes.last_mut().expect("just added").output = vec![OUTPUT_NAME.into()];
    GraphProto {
        node: g.nodes,
        name: format!("rt4ksr_x{}", config.scale),
        initializer: g.initializers,
        input: vec![tensor_info(
            INPUT_NAME,
            [named("batch"), fixed(3), named("height"), named("width")],
        )],
        output: vec![tensor_info(
            OUTPUT_NAME,
            [named("batch"), fixed(3), named("out_height"), named("out_width")],
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::init::perturbed_weights;

    fn decode(bytes: &[u8]) -> ModelProto {
        ModelProto::decode(bytes).expect("a valid protobuf")
    }

    #[test]
    fn official_graph_has_no_dead_branch_and_dynamic_sides() {
        let w = perturbed_weights(&ModelConfig::official(3), Form::Training, 7);
        let model = decode(&export(&w).unwrap());
        assert_eq!(model.opset_import[0].version, OPSET);
        let graph = model.graph.unwrap();
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        // Head, 4 blocks, tail, upsample: 7 convs, no HF-branch conv and no blur.
        assert_eq!(ops.iter().filter(|&&o| o == "Conv").count(), 7);
        assert_eq!(ops.first(), Some(&"SpaceToDepth"));
        assert_eq!(ops.last(), Some(&"DepthToSpace"));
        assert_eq!(ops.iter().filter(|&&o| o == "Erf").count(), 4);
        assert!(graph.initializer.iter().all(|t| !t.name.contains("hf")));
        let dims = &graph.input[0].r#type.as_ref().unwrap().tensor_type.as_ref().unwrap();
        let dims = &dims.shape.as_ref().unwrap().dim;
        assert_eq!(dims[2].dim_param.as_deref(), Some("height"));
        assert_eq!(dims[1].dim_value, Some(3));
        // Every node input is the graph input, an initializer or an earlier node's output.
        let mut known: Vec<String> = graph.initializer.iter().map(|t| t.name.clone()).collect();
        known.push(INPUT_NAME.into());
        for node in &graph.node {
            for input in &node.input {
                assert!(known.contains(input), "{} reads unknown {input}", node.name);
            }
            known.extend(node.output.iter().cloned());
        }
        assert_eq!(graph.node.last().unwrap().output, vec![OUTPUT_NAME.to_string()]);
    }

    #[test]
    fn head_permutation_moves_each_colour_phase() {
        // One output channel; input channel c*4 + k holds the value 10c + k everywhere.
        let data: Vec<f32> = (0..12).flat_map(|i| [(10 * (i / 4) + i % 4) as f32; 9]).collect();
        let permuted = head_for_space_to_depth(&HostTensor::new(vec![1, 12, 3, 3], data));
        let firsts: Vec<f32> = permuted.data.chunks(9).map(|k| k[0]).collect();
        assert_eq!(
            firsts,
            vec![0.0, 10.0, 20.0, 1.0, 11.0, 21.0, 2.0, 12.0, 22.0, 3.0, 13.0, 23.0]
        );
    }

    #[test]
    fn unsupported_configurations_are_named() {
        let mut c = ModelConfig::official(2);
        c.merge_hf = true;
        let err = export(&perturbed_weights(&c, Form::Training, 1)).unwrap_err();
        assert!(matches!(err, ExportError::MergeHf), "{err:?}");
        c.merge_hf = false;
        c.eca = true;
        let err = export(&perturbed_weights(&c, Form::Training, 1)).unwrap_err();
        assert!(matches!(err, ExportError::Eca), "{err:?}");
    }
}
