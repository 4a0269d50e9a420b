#include "rpc/evaluation_proto.h"

namespace stylesweep {

void ToProto(const Evaluation& e, v1::Evaluation* out) {
  out->set_style(e.style);
  out->set_content(e.content);
  out->set_tv(e.tv);
  out->set_style_norm(e.style_norm);
  out->set_content_norm(e.content_norm);
  out->set_tv_norm(e.tv_norm);
  out->set_ssim(e.ssim);
  out->set_color(e.color);
}

Evaluation FromProto(const v1::Evaluation& e) {
  Evaluation out;
  out.style = e.style();
  out.content = e.content();
  out.tv = e.tv();
  out.style_norm = e.style_norm();
  out.content_norm = e.content_norm();
  out.tv_norm = e.tv_norm();
  out.ssim = e.ssim();
  out.color = e.color();
  return out;
}

}  // namespace stylesweep
