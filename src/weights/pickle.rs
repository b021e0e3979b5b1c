//! A safe reader for the subset of Python's pickle format that PyTorch checkpoints use.
//!
//! Pickle is a program for a stack machine whose `GLOBAL` + `REDUCE` opcodes call arbitrary
//! Python functions; a checkpoint from the internet can run any code in Python. This reader runs
//! nothing: it builds plain values, and it accepts only the handful of globals a state dict
//! needs (ordered dicts, tensor and parameter rebuilds, storage types). Every other global is
//! refused before anything else happens. Lengths are checked against the input before any
//! allocation, and the stack and memo are bounded.

use std::collections::HashMap;

/// Element type of a PyTorch storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageType {
    F32,
    F64,
    F16,
    Bf16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl StorageType {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "FloatStorage" => Self::F32,
            "DoubleStorage" => Self::F64,
            "HalfStorage" => Self::F16,
            "BFloat16Storage" => Self::Bf16,
            "LongStorage" => Self::I64,
            "IntStorage" => Self::I32,
            "ShortStorage" => Self::I16,
            "CharStorage" => Self::I8,
            "ByteStorage" => Self::U8,
            "BoolStorage" => Self::Bool,
            _ => return None,
        })
    }

    pub fn element_size(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::Bf16 | Self::I16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }
}

/// A reference to a storage record of the checkpoint archive (`data/<key>`).
#[derive(Clone, Debug, PartialEq)]
pub struct StorageRef {
    pub dtype: StorageType,
    pub key: String,
    pub numel: usize,
}

/// A tensor view on a storage, as `torch._utils._rebuild_tensor_v2` describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

/// The callables a checkpoint may name.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Callable {
    OrderedDict,
    Counter,
    RebuildTensorV2,
    RebuildParameter,
}

/// A decoded pickle value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Storage(StorageRef),
    Tensor(TensorRef),
    StorageClass(StorageType),
    Callable(CallableValue),
    Mark,
}

/// Opaque wrapper so callers cannot construct callables themselves.
#[derive(Clone, Debug, PartialEq)]
pub struct CallableValue(Callable);

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Looks a string key up in a dict.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Why a pickle program was refused. None of these runs anything: the reader stops at the first.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PickleError {
    #[error("truncated pickle at byte {at}")]
    Truncated { at: usize },
    /// A global that could run code: refused before anything else happens.
    #[error(
        "it names the Python global `{module}.{name}`; a weight file may hold only tensors, numbers \
         and strings (such a global can run code, and is never run here)"
    )]
    ForbiddenGlobal { module: String, name: String },
    #[error("pickle opcode 0x{opcode:02x} at byte {at} is not accepted in a weight file")]
    UnknownOpcode { opcode: u8, at: usize },
    #[error("pickle protocol {0} is not supported")]
    UnsupportedProtocol(u8),
    /// The stack or the memo would pass its bound.
    #[error("pickle {0} too large")]
    TooLarge(&'static str),
    #[error("memo key {0} unknown")]
    UnknownMemoKey(u32),
    #[error("tensor rank {0} is above {MAX_RANK}")]
    RankTooHigh(usize),
    #[error("tensor view reaches element {last} of a storage of {numel} elements")]
    OutsideStorage { last: usize, numel: usize },
    /// A program that a well-formed state dict never contains (the description says which).
    #[error("{0}")]
    Malformed(&'static str),
}

const MAX_STACK: usize = 1 << 16;
const MAX_MEMO: usize = 1 << 20;
const MAX_RANK: usize = 16;
const UNDERFLOW: PickleError = PickleError::Malformed("pickle stack underflow");

/// Decodes `data` into a value.
pub fn unpickle(data: &[u8]) -> Result<Value, PickleError> {
    Machine {
        data,
        pos: 0,
        stack: Vec::new(),
        memo: HashMap::new(),
    }
    .run()
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or(PickleError::Truncated { at: self.pos })?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, PickleError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn u64(&mut self) -> Result<u64, PickleError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }

    fn line(&mut self) -> Result<&'a str, PickleError> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(PickleError::Malformed("unterminated GLOBAL name"))?;
        let line = std::str::from_utf8(&rest[..n]).map_err(|_| PickleError::Malformed("GLOBAL name is not UTF-8"))?;
        self.pos += n + 1;
        Ok(line)
    }

    fn string(&mut self, n: usize) -> Result<Value, PickleError> {
        let bytes = self.take(n)?;
        Ok(Value::Str(String::from_utf8_lossy(bytes).into_owned()))
    }

    fn push(&mut self, value: Value) -> Result<(), PickleError> {
        if self.stack.len() >= MAX_STACK {
            return Err(PickleError::TooLarge("stack"));
        }
        self.stack.push(value);
        Ok(())
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        self.stack.pop().ok_or(UNDERFLOW)
    }

    /// Pops everything down to the last MARK.
    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let at = self
            .stack
            .iter()
            .rposition(|v| *v == Value::Mark)
            .ok_or(PickleError::Malformed("MARK missing"))?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }

    fn top(&mut self) -> Result<&mut Value, PickleError> {
        self.stack.last_mut().ok_or(UNDERFLOW)
    }

    fn memoize(&mut self, key: u32) -> Result<(), PickleError> {
        if self.memo.len() >= MAX_MEMO {
            return Err(PickleError::TooLarge("memo"));
        }
        let value = self.stack.last().ok_or(UNDERFLOW)?.clone();
        self.memo.insert(key, value);
        Ok(())
    }

    fn recall(&mut self, key: u32) -> Result<(), PickleError> {
        let value = self.memo.get(&key).ok_or(PickleError::UnknownMemoKey(key))?.clone();
        self.push(value)
    }

    fn global(&mut self, module: &str, name: &str) -> Result<Value, PickleError> {
        let callable = |c| Ok(Value::Callable(CallableValue(c)));
        match (module, name) {
            ("collections", "OrderedDict") => callable(Callable::OrderedDict),
            ("collections", "Counter") => callable(Callable::Counter),
            ("torch._utils", "_rebuild_tensor_v2") => callable(Callable::RebuildTensorV2),
            ("torch._utils", "_rebuild_parameter") => callable(Callable::RebuildParameter),
            ("torch", storage) if StorageType::from_name(storage).is_some() => {
                Ok(Value::StorageClass(StorageType::from_name(storage).unwrap()))
            }
            _ => Err(PickleError::ForbiddenGlobal {
                module: module.to_owned(),
                name: name.to_owned(),
            }),
        }
    }

    fn reduce(&mut self, callable: Value, args: Value) -> Result<Value, PickleError> {
        let Value::Callable(CallableValue(callable)) = callable else {
            return Err(PickleError::Malformed(
                "REDUCE on something that is not an accepted callable",
            ));
        };
        let Value::Tuple(args) = args else {
            return Err(PickleError::Malformed("REDUCE arguments are not a tuple"));
        };
        match callable {
            Callable::OrderedDict => Ok(Value::Dict(Vec::new())),
            Callable::Counter => match args.into_iter().next() {
                Some(Value::Dict(items)) => Ok(Value::Dict(items)),
                _ => Ok(Value::Dict(Vec::new())),
            },
            Callable::RebuildParameter => args
                .into_iter()
                .next()
                .ok_or(PickleError::Malformed("_rebuild_parameter without a tensor")),
            Callable::RebuildTensorV2 => rebuild_tensor(args),
        }
    }

    fn persistent_load(&mut self, pid: Value) -> Result<Value, PickleError> {
        let Value::Tuple(items) = pid else {
            return Err(PickleError::Malformed("persistent id is not a tuple"));
        };
        match items.as_slice() {
            [
                Value::Str(kind),
                Value::StorageClass(dtype),
                Value::Str(key),
                _location,
                Value::Int(numel),
            ] if kind == "storage" && *numel >= 0 => Ok(Value::Storage(StorageRef {
                dtype: *dtype,
                key: key.clone(),
                numel: *numel as usize,
            })),
            _ => Err(PickleError::Malformed(
                "persistent id is not a ('storage', type, key, location, numel) record",
            )),
        }
    }

    fn run(mut self) -> Result<Value, PickleError> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    let protocol = self.u8()?;
                    if protocol > 5 {
                        return Err(PickleError::UnsupportedProtocol(protocol));
                    }
                }
                0x95 => {
                    self.u64()?; // FRAME: a length hint only
                }
                b'.' => return self.pop(),
                b'(' => self.push(Value::Mark)?,
                b'}' => self.push(Value::Dict(Vec::new()))?,
                b']' => self.push(Value::List(Vec::new()))?,
                b')' => self.push(Value::Tuple(Vec::new()))?,
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(v as i64))?
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(v as i64))?
                }
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Value::Int(v as i64))?
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    if n > 8 {
                        return Err(PickleError::Malformed("integer wider than 64 bits"));
                    }
                    let bytes = self.take(n)?;
                    let mut buf = if bytes.last().is_some_and(|b| b & 0x80 != 0) {
                        [0xff; 8]
                    } else {
                        [0; 8]
                    };
                    buf[..n].copy_from_slice(bytes);
                    self.push(Value::Int(i64::from_le_bytes(buf)))?
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into().unwrap());
                    self.push(Value::Float(v))?
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = self.string(n)?;
                    self.push(s)?
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = self.string(n)?;
                    self.push(s)?
                }
                0x8d => {
                    let n = usize::try_from(self.u64()?).map_err(|_| PickleError::Malformed("string too long"))?;
                    let s = self.string(n)?;
                    self.push(s)?
                }
                b'U' => {
                    let n = self.u8()? as usize;
                    let s = self.string(n)?;
                    self.push(s)?
                }
                b'T' => {
                    let n = self.u32()? as usize;
                    let s = self.string(n)?;
                    self.push(s)?
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b))?
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b))?
                }
                b'q' => {
                    let k = self.u8()? as u32;
                    self.memoize(k)?
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memoize(k)?
                }
                0x94 => {
                    let k = self.memo.len() as u32;
                    self.memoize(k)?
                }
                b'h' => {
                    let k = self.u8()? as u32;
                    self.recall(k)?
                }
                b'j' => {
                    let k = self.u32()?;
                    self.recall(k)?
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Tuple(items))?
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err(UNDERFLOW);
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    if items.contains(&Value::Mark) {
                        return Err(PickleError::Malformed("MARK inside a tuple"));
                    }
                    self.push(Value::Tuple(items))?
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let v = self.global(module, name)?;
                    self.push(v)?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(module), Some(name)) = (module.as_str(), name.as_str()) else {
                        return Err(PickleError::Malformed("STACK_GLOBAL with non-string names"));
                    };
                    let v = self.global(module, name)?;
                    self.push(v)?
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.reduce(callable, args)?;
                    self.push(v)?
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.persistent_load(pid)?;
                    self.push(v)?
                }
                b'b' => {
                    // BUILD sets object state; for the dicts of a state dict that is only
                    // `_metadata`, which carries no tensor data.
                    self.pop()?;
                    if !matches!(self.top()?, Value::Dict(_) | Value::Tensor(_)) {
                        return Err(PickleError::Malformed(
                            "BUILD on an object that is not a dict or tensor",
                        ));
                    }
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    match self.top()? {
                        Value::Dict(items) => items.push((key, value)),
                        _ => return Err(PickleError::Malformed("SETITEM on a non-dict")),
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(PickleError::Malformed("SETITEMS with an odd number of items"));
                    }
                    let mut pairs = Vec::with_capacity(items.len() / 2);
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    match self.top()? {
                        Value::Dict(d) => d.extend(pairs),
                        _ => return Err(PickleError::Malformed("SETITEMS on a non-dict")),
                    }
                }
                b'a' => {
                    let value = self.pop()?;
                    match self.top()? {
                        Value::List(l) => l.push(value),
                        _ => return Err(PickleError::Malformed("APPEND on a non-list")),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.top()? {
                        Value::List(l) => l.extend(items),
                        _ => return Err(PickleError::Malformed("APPENDS on a non-list")),
                    }
                }
                other => {
                    return Err(PickleError::UnknownOpcode {
                        opcode: other,
                        at: self.pos - 1,
                    });
                }
            }
        }
    }
}

/// A tensor's shape or stride (`what`, for the error) as sizes.
fn usize_list(value: &Value, what: &'static str) -> Result<Vec<usize>, PickleError> {
    let Value::Tuple(items) = value else {
        return Err(PickleError::Malformed(what));
    };
    if items.len() > MAX_RANK {
        return Err(PickleError::RankTooHigh(items.len()));
    }
    items
        .iter()
        .map(|v| match v {
            Value::Int(i) if *i >= 0 => Ok(*i as usize),
            _ => Err(PickleError::Malformed(what)),
        })
        .collect()
}

fn rebuild_tensor(args: Vec<Value>) -> Result<Value, PickleError> {
    let [storage, offset, shape, stride, ..] = args.as_slice() else {
        return Err(PickleError::Malformed("_rebuild_tensor_v2 with too few arguments"));
    };
    let Value::Storage(storage) = storage else {
        return Err(PickleError::Malformed("_rebuild_tensor_v2 without a storage"));
    };
    let Value::Int(offset) = offset else {
        return Err(PickleError::Malformed("_rebuild_tensor_v2 offset is not an integer"));
    };
    let shape = usize_list(shape, "a tensor shape is not a tuple of sizes")?;
    let stride = usize_list(stride, "a tensor stride is not a tuple of sizes")?;
    if shape.len() != stride.len() {
        return Err(PickleError::Malformed("tensor shape and stride differ in rank"));
    }
    // The view must lie inside its storage: checked here, before any data is read.
    let offset = usize::try_from(*offset).map_err(|_| PickleError::Malformed("negative tensor offset"))?;
    let mut last = offset;
    for (&n, &s) in shape.iter().zip(&stride) {
        if n == 0 {
            last = offset;
            break;
        }
        last = (n - 1)
            .checked_mul(s)
            .and_then(|x| x.checked_add(last))
            .ok_or(PickleError::Malformed("tensor extent overflows"))?;
    }
    if shape.iter().all(|&n| n > 0) && last >= storage.numel {
        return Err(PickleError::OutsideStorage {
            last,
            numel: storage.numel,
        });
    }
    Ok(Value::Tensor(TensorRef {
        storage: storage.clone(),
        offset,
        shape,
        stride,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_code_execution_globals() {
        // pickle.dumps of os.system('echo pwned') via __reduce__, protocol 2.
        let evil = b"\x80\x02cposix\nsystem\nq\x00X\n\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.";
        let err = unpickle(evil).unwrap_err();
        assert_eq!(
            err,
            PickleError::ForbiddenGlobal {
                module: "posix".into(),
                name: "system".into()
            }
        );
        let evil4 = b"\x80\x04\x95\x15\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94.";
        let err = unpickle(evil4).unwrap_err();
        assert!(err.to_string().contains("`builtins.eval`"), "{err}");
    }

    #[test]
    fn decodes_plain_values() {
        // pickle.dumps({'a': [1, 2.5, None, True], 'b': (300, -2)}, protocol=2)
        let data = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01G@\x04\x00\x00\x00\x00\x00\x00N\x88eX\x01\x00\x00\x00bq\x03M,\x01J\xfe\xff\xff\xff\x86q\x04u.";
        let v = unpickle(data).unwrap();
        assert_eq!(
            v.get("a"),
            Some(&Value::List(vec![
                Value::Int(1),
                Value::Float(2.5),
                Value::None,
                Value::Bool(true)
            ]))
        );
        assert_eq!(v.get("b"), Some(&Value::Tuple(vec![Value::Int(300), Value::Int(-2)])));
    }

    #[test]
    fn truncation_and_garbage_are_errors_not_panics() {
        let data = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01G@\x04";
        for n in 0..data.len() {
            assert!(unpickle(&data[..n]).is_err());
        }
        assert_eq!(unpickle(b"X\xff\xff\xff\xff"), Err(PickleError::Truncated { at: 5 }));
        assert_eq!(
            unpickle(b"\xff"),
            Err(PickleError::UnknownOpcode { opcode: 0xff, at: 0 })
        );
        assert_eq!(unpickle(b"u."), Err(PickleError::Malformed("MARK missing")));
    }

    #[test]
    fn tensor_views_outside_their_storage_are_refused() {
        let storage = Value::Storage(StorageRef {
            dtype: StorageType::F32,
            key: "0".into(),
            numel: 6,
        });
        let ok = rebuild_tensor(vec![
            storage.clone(),
            Value::Int(0),
            Value::Tuple(vec![Value::Int(2), Value::Int(3)]),
            Value::Tuple(vec![Value::Int(3), Value::Int(1)]),
        ]);
        assert!(ok.is_ok());
        let err = rebuild_tensor(vec![
            storage,
            Value::Int(1),
            Value::Tuple(vec![Value::Int(2), Value::Int(3)]),
            Value::Tuple(vec![Value::Int(3), Value::Int(1)]),
        ])
        .unwrap_err();
        assert_eq!(err, PickleError::OutsideStorage { last: 6, numel: 6 });
    }
}
